/** A small line chart of recent values (nulls leave gaps), newest on the right. */
export function Sparkline({
  values,
  width = 220,
  height = 48,
  label,
  format,
}: {
  values: (number | null)[];
  width?: number;
  height?: number;
  label: string;
  format: (v: number) => string;
}) {
  const present = values.filter((v): v is number => v !== null);
  const max = Math.max(1e-9, ...present);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  let d = "";
  let pen = false;
  values.forEach((v, i) => {
    if (v === null) {
      pen = false;
      return;
    }
    const x = i * step;
    const y = height - 2 - (v / max) * (height - 6);
    d += `${pen ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)} `;
    pen = true;
  });
  const last = present.length ? present[present.length - 1] : undefined;
  return (
    <svg className="sparkline" width={width} height={height} role="img" aria-label={`${label}: ${last === undefined ? "no data" : format(last)}`}>
      <line x1={0} x2={width} y1={height - 1} y2={height - 1} className="spark-base" />
      {d && <path d={d.trim()} className="spark-line" />}
      {present.length > 0 && (
        <text x={width - 2} y={10} textAnchor="end" className="spark-max">
          max {format(max)}
        </text>
      )}
    </svg>
  );
}
