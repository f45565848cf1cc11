// A small line plot of rates over time on a <canvas>: no library, nothing fetched.

/** Colours of the series, in order; the legend uses the classes series-0… with the same colours (admin.css). */
export const Colours = ['#2563eb', '#16a34a', '#d97706', '#9333ea'];

const Pad = { left: 48, right: 12, top: 12, bottom: 24 };

/** A round upper bound for the y axis: 1, 2, 5, 10, 20, 50… */
function niceMax(value) {
  if (value <= 1) {
    return 1;
  }
  const magnitude = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 5, 10].find(m => m * magnitude >= value);
  return step * magnitude;
}

/**
 * Draws `series` (`[{ points: [{ t, v }] }]`, t in ms) over the last `windowMs` ending at `now`.
 * Returns how many points were drawn.
 */
export function drawPlot(canvas, series, now, windowMs) {
  // Draw at the screen's pixel density, so that lines stay sharp.
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  g.fillStyle = '#ffffff';
  g.fillRect(0, 0, width, height);

  const from = now - windowMs;
  const visible = series.map(s => s.points.filter(p => p.t >= from));
  const top = niceMax(Math.max(0, ...visible.flat().map(p => p.v)));
  const plotWidth = width - Pad.left - Pad.right;
  const plotHeight = height - Pad.top - Pad.bottom;
  const x = t => Pad.left + ((t - from) / windowMs) * plotWidth;
  const y = v => Pad.top + plotHeight - (v / top) * plotHeight;

  g.font = '11px sans-serif';
  g.lineWidth = 1;
  g.strokeStyle = '#e5e7eb';
  g.fillStyle = '#6b7280';
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    g.beginPath();
    g.moveTo(Pad.left, y(v));
    g.lineTo(width - Pad.right, y(v));
    g.stroke();
    g.fillText(Number.isInteger(v) ? String(v) : v.toFixed(1), Pad.left - 6, y(v));
  }
  g.textAlign = 'center';
  g.textBaseline = 'top';
  for (let s = 0; s <= windowMs / 1000; s += 30) {
    g.fillText(s === 0 ? 'now' : `-${s}s`, x(now - s * 1000), height - Pad.bottom + 6);
  }

  let drawn = 0;
  g.lineWidth = 2;
  // The first series last, on top: where lines overlap, the first one shows.
  for (let i = visible.length - 1; i >= 0; i--) {
    const points = visible[i];
    if (points.length === 0) {
      continue;
    }
    g.strokeStyle = Colours[i % Colours.length];
    g.beginPath();
    points.forEach((p, j) => (j === 0 ? g.moveTo(x(p.t), y(p.v)) : g.lineTo(x(p.t), y(p.v))));
    g.stroke();
    drawn += points.length;
  }
  return drawn;
}
