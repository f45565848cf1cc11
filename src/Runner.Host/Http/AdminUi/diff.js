// The difference between two saga states, as paths: what a history step added, removed or changed.

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

const Identifier = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function child(path, key) {
  if (typeof key === 'number') {
    return `${path}[${key}]`;
  }
  const name = Identifier.test(key) ? key : JSON.stringify(key);
  if (path === '') {
    return Identifier.test(key) ? key : `[${name}]`;
  }
  return Identifier.test(key) ? `${path}.${name}` : `${path}[${name}]`;
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Every path where `after` differs from `before`, in path order:
 * `{ path, kind: 'added' | 'removed' | 'changed', before, after }`. Objects and arrays are
 * compared member by member; a value that changes type is one change at its path. A missing
 * state (null, the state before a first step) compares as an empty object.
 */
export function diffStates(before, after) {
  const changes = [];
  walk(before ?? {}, after ?? {}, '', changes);
  return changes;
}

function walk(before, after, path, changes) {
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    for (const key of keys) {
      const at = child(path, key);
      if (!(key in after)) {
        changes.push({ path: at, kind: 'removed', before: before[key] });
      } else if (!(key in before)) {
        changes.push({ path: at, kind: 'added', after: after[key] });
      } else {
        walk(before[key], after[key], at, changes);
      }
    }
    return;
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    for (let i = 0; i < Math.max(before.length, after.length); i++) {
      const at = child(path, i);
      if (i >= after.length) {
        changes.push({ path: at, kind: 'removed', before: before[i] });
      } else if (i >= before.length) {
        changes.push({ path: at, kind: 'added', after: after[i] });
      } else {
        walk(before[i], after[i], at, changes);
      }
    }
    return;
  }
  if (!same(before, after)) {
    changes.push({ path: path || '(state)', kind: 'changed', before, after });
  }
}
