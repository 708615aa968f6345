/** Bar charts as plain SVG text: enough for the benchmark's figures, no chart library. */

export interface Series {
  readonly name: string;
  /** One value per category; NaN or undefined draws nothing. */
  readonly values: readonly (number | undefined)[];
}

export interface BarChart {
  readonly title: string;
  /** What the y axis measures, with its unit. */
  readonly yLabel: string;
  readonly categories: readonly string[];
  readonly series: readonly Series[];
  /** Stack the series in each category instead of setting them side by side. */
  readonly stacked?: boolean;
}

const WIDTH = 720;
const HEIGHT = 360;
const MARGIN = { top: 48, right: 180, bottom: 56, left: 72 };
/** Colour-blind-safe (Okabe-Ito) palette. */
const COLOURS = [
  "#0072B2",
  "#E69F00",
  "#009E73",
  "#D55E00",
  "#CC79A7",
  "#56B4E9",
  "#F0E442",
  "#000000",
];
const TICKS = 5;

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** A round step (1, 2 or 5 times a power of ten) giving about `TICKS` ticks up to `max`. */
function niceStep(max: number): number {
  const raw = max / TICKS;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= raw);
  return step ?? raw;
}

function formatTick(value: number): string {
  if (value === 0) return "0";
  if (Math.abs(value) >= 1000) return value.toLocaleString("en-US");
  return String(Number(value.toPrecision(3)));
}

/** Renders `chart` as a standalone SVG document. */
export function barChart(chart: BarChart): string {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const valueAt = (series: Series, index: number) => {
    const value = series.values[index];
    return value === undefined || !Number.isFinite(value) ? 0 : value;
  };
  const totals = chart.categories.map((_, index) =>
    chart.stacked
      ? chart.series.reduce((sum, series) => sum + valueAt(series, index), 0)
      : Math.max(0, ...chart.series.map((series) => valueAt(series, index))),
  );
  const step = niceStep(Math.max(...totals, Number.MIN_VALUE));
  const top = Math.max(step, Math.ceil(Math.max(...totals) / step) * step);
  const y = (value: number) => MARGIN.top + plotHeight - (value / top) * plotHeight;
  const band = plotWidth / chart.categories.length;
  const groupWidth = band * 0.7;
  const barWidth = chart.stacked ? groupWidth : groupWidth / chart.series.length;

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(chart.title)}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(chart.title)}</text>`,
    `<text transform="translate(16 ${MARGIN.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">${escapeXml(chart.yLabel)}</text>`,
  ];
  for (let tick = 0; tick <= top + step / 2; tick += step) {
    const at = y(tick);
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${at}" y2="${at}" stroke="#ddd"/>`,
      `<text x="${MARGIN.left - 6}" y="${at + 4}" text-anchor="end">${formatTick(tick)}</text>`,
    );
  }
  chart.categories.forEach((category, index) => {
    const left = MARGIN.left + index * band + (band - groupWidth) / 2;
    let stackedBase = 0;
    chart.series.forEach((series, seriesIndex) => {
      const value = valueAt(series, index);
      if (value <= 0) return;
      const x = chart.stacked ? left : left + seriesIndex * barWidth;
      const base = chart.stacked ? stackedBase : 0;
      const colour = COLOURS[seriesIndex % COLOURS.length];
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${y(base + value).toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${(y(base) - y(base + value)).toFixed(1)}" fill="${colour}"><title>${escapeXml(`${series.name}, ${category}: ${formatTick(value)}`)}</title></rect>`,
      );
      stackedBase += value;
    });
    parts.push(
      `<text x="${(left + groupWidth / 2).toFixed(1)}" y="${MARGIN.top + plotHeight + 18}" text-anchor="middle">${escapeXml(category)}</text>`,
    );
  });
  parts.push(
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${MARGIN.top + plotHeight}" stroke="#333"/>`,
    `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${MARGIN.top + plotHeight}" y2="${MARGIN.top + plotHeight}" stroke="#333"/>`,
  );
  chart.series.forEach((series, index) => {
    const legendY = MARGIN.top + index * 20;
    const legendX = WIDTH - MARGIN.right + 16;
    parts.push(
      `<rect x="${legendX}" y="${legendY}" width="12" height="12" fill="${COLOURS[index % COLOURS.length]}"/>`,
      `<text x="${legendX + 18}" y="${legendY + 10}">${escapeXml(series.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
