namespace Runner.Scripting;

/// <summary>JavaScript run once per engine, before and after the saga script loads.</summary>
internal static class SandboxSetup
{
    /// <summary>Math.random becomes the host's seeded generator.</summary>
    public const string InstallRandom = """
        (function (random) {
          Object.defineProperty(Math, 'random', { value: random, writable: false, configurable: false, enumerable: false });
        })
        """;

    /// <summary>Freezes the host functions <c>ctx.id</c> and <c>ctx.random</c> (the sandbox builds each frozen ctx around them).</summary>
    public const string FreezeHostFunctions = """
        (function (id, random) {
          Object.freeze(id);
          Object.freeze(random);
        })
        """;

    private const string DeepFreeze = """
        const seen = new Set();
        seen.add(globalThis);
        const mutable = [Map, Set, WeakMap, WeakSet, Date, ArrayBuffer, Promise];
        function deepFreeze(value, path, user) {
          if (value === null || (typeof value !== 'object' && typeof value !== 'function') || seen.has(value)) { return; }
          seen.add(value);
          if (user) {
            for (const type of mutable) {
              if (value instanceof type) { throw new TypeError(path + ' is a ' + type.name + ', which keeps state between events; create it inside on_event'); }
            }
            if (ArrayBuffer.isView(value)) { throw new TypeError(path + ' is a typed array, which keeps state between events'); }
          }
          Object.freeze(value);
          for (const key of Reflect.ownKeys(value)) {
            const d = Object.getOwnPropertyDescriptor(value, key);
            if (!d) { continue; }
            const name = path + '.' + String(key);
            if ('value' in d) { deepFreeze(d.value, name, user); } else { deepFreeze(d.get, name, user); deepFreeze(d.set, name, user); }
          }
          deepFreeze(Object.getPrototypeOf(value), path + '.__proto__', false);
        }
        """;

    /// <summary>Freezes every intrinsic reachable from the global object (not the global itself yet).</summary>
    public const string FreezeIntrinsics = "(function () {\n" + DeepFreeze + """
          for (const key of Reflect.ownKeys(globalThis)) {
            const d = Object.getOwnPropertyDescriptor(globalThis, key);
            if (d && 'value' in d) { deepFreeze(d.value, String(key), false); }
          }
        })();
        """;

    /// <summary>Freezes what the script declared (functions on the global, top-level consts), then the global object.</summary>
    public static string FreezeUserGlobals(IReadOnlyList<string> constNames)
    {
        var consts = string.Concat(constNames.Select(n => $"  deepFreeze({n}, '{n}', true);\n"));
        return "(function () {\n" + DeepFreeze + """
              for (const key of Reflect.ownKeys(globalThis)) {
                const d = Object.getOwnPropertyDescriptor(globalThis, key);
                if (d && 'value' in d && !Object.isFrozen(d.value)) { deepFreeze(d.value, String(key), true); }
              }

            """ + consts + """
              Object.freeze(globalThis);
            })();
            """;
    }
}
