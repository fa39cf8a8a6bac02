/**
 * A small line-chart writer for the comparison's figures: plain SVG 1.1 text, no
 * dependency, white background (GitHub's dark theme shows a transparent SVG on black),
 * system fonts, every axis labelled, one legend per figure. Enough for a handful of series
 * of a few hundred points; not a plotting library.
 */

/** One line of a panel. */
export interface Series {
  /** Legend text; series of the same name share one legend entry. */
  name: string
  color: string
  dashed?: boolean
  /** [x, y]; points with a non-finite coordinate are left out (the line breaks there). */
  points: Array<[number, number]>
  /** Drawn beside the point of the same index when given (e.g. "46/50 failed"). */
  labels?: Array<string | undefined>
  /** Draws a marker on every point (for a few points, e.g. one per N). */
  markers?: boolean
}

/** One axis of a panel. */
export interface Axis {
  label: string
  min: number
  max: number
  /** Logarithmic scale (min must then be > 0). */
  log?: boolean
  /** Tick values; by default about 5 "nice" ones (1, 2, 5 × 10ⁿ). */
  ticks?: number[]
  format?(value: number): string
}

/** One chart of a figure. */
export interface Panel {
  title: string
  x: Axis
  y: Axis
  series: Series[]
  /** Lines of text at the panel's lower right, inside the plot (e.g. how a run ended). */
  notes?: string[]
}

/** Layout of a figure. */
export interface FigureOptions {
  columns?: number
  panelWidth?: number
  panelHeight?: number
}

const MARGIN = { left: 64, right: 16, top: 28, bottom: 46 }
const TITLE_HEIGHT = 30
/** Height of one row of the legend; entries wrap onto more rows when the figure is narrow. */
const LEGEND_ROW_HEIGHT = 20
/** Width of a legend character at 12 px, generously (no text metrics in plain SVG). */
const LEGEND_CHAR_WIDTH = 7.2
const FONT = 'font-family="-apple-system, Segoe UI, Helvetica, Arial, sans-serif"'

function escape (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

const round = (n: number): string => (Math.round(n * 10) / 10).toString()

/** About `count` round tick values from `min` to `max`: steps of 1, 2 or 5 × 10ⁿ. */
export function niceTicks (min: number, max: number, count = 5): number[] {
  if (!(max > min)) {
    return [min]
  }
  const raw = (max - min) / count
  const magnitude = 10 ** Math.floor(Math.log10(raw))
  const step = ([1, 2, 5, 10].map(m => m * magnitude).find(s => s >= raw)) ?? raw
  const ticks: number[] = []
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) {
    ticks.push(Number(t.toPrecision(12)))
  }
  return ticks
}

/** Tick values 1, 2, 5 × 10ⁿ within [min, max] (min > 0). */
export function logTicks (min: number, max: number): number[] {
  const ticks: number[] = []
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of [1, 2, 5]) {
      const t = Number((m * 10 ** e).toPrecision(12))
      if (t >= min * (1 - 1e-9) && t <= max * (1 + 1e-9)) {
        ticks.push(t)
      }
    }
  }
  return ticks
}

function formatTick (value: number): string {
  if (value === 0) {
    return '0'
  }
  const abs = Math.abs(value)
  if (abs >= 1000) {
    return value.toLocaleString('en-US')
  }
  return abs >= 1 ? String(Number(value.toPrecision(4))) : String(Number(value.toPrecision(2)))
}

function scale (axis: Axis, from: number, to: number): (v: number) => number {
  if (axis.log === true) {
    const lo = Math.log10(axis.min)
    const hi = Math.log10(axis.max)
    return v => from + (Math.log10(v) - lo) / (hi - lo || 1) * (to - from)
  }
  return v => from + (v - axis.min) / (axis.max - axis.min || 1) * (to - from)
}

function panelSvg (panel: Panel, left: number, top: number, width: number, height: number): string {
  const x0 = left + MARGIN.left
  const x1 = left + width - MARGIN.right
  const y0 = top + height - MARGIN.bottom
  const y1 = top + MARGIN.top
  const sx = scale(panel.x, x0, x1)
  const sy = scale(panel.y, y0, y1)
  const inRange = (axis: Axis, v: number): boolean => Number.isFinite(v) && (axis.log !== true || v > 0)
  const out: string[] = []
  if (panel.title !== '') {
    out.push(`<text x="${round((x0 + x1) / 2)}" y="${round(top + 18)}" text-anchor="middle" font-size="14" font-weight="600">${escape(panel.title)}</text>`)
  }
  // grid and ticks
  const xTicks = panel.x.ticks ?? (panel.x.log === true ? logTicks(panel.x.min, panel.x.max) : niceTicks(panel.x.min, panel.x.max))
  const yTicks = panel.y.ticks ?? (panel.y.log === true ? logTicks(panel.y.min, panel.y.max) : niceTicks(panel.y.min, panel.y.max))
  for (const t of xTicks) {
    const x = round(sx(t))
    out.push(`<line x1="${x}" y1="${round(y1)}" x2="${x}" y2="${round(y0)}" stroke="#e5e5e5"/>`)
    out.push(`<text x="${x}" y="${round(y0 + 16)}" text-anchor="middle" font-size="11" fill="#444">${escape((panel.x.format ?? formatTick)(t))}</text>`)
  }
  for (const t of yTicks) {
    const y = round(sy(t))
    out.push(`<line x1="${round(x0)}" y1="${y}" x2="${round(x1)}" y2="${y}" stroke="#e5e5e5"/>`)
    out.push(`<text x="${round(x0 - 6)}" y="${y}" dy="4" text-anchor="end" font-size="11" fill="#444">${escape((panel.y.format ?? formatTick)(t))}</text>`)
  }
  out.push(`<rect x="${round(x0)}" y="${round(y1)}" width="${round(x1 - x0)}" height="${round(y0 - y1)}" fill="none" stroke="#888"/>`)
  out.push(`<text x="${round((x0 + x1) / 2)}" y="${round(y0 + 36)}" text-anchor="middle" font-size="12">${escape(panel.x.label)}</text>`)
  const yMid = round((y0 + y1) / 2)
  out.push(`<text x="${round(left + 16)}" y="${yMid}" text-anchor="middle" font-size="12" transform="rotate(-90 ${round(left + 16)} ${yMid})">${escape(panel.y.label)}</text>`)
  // lines: a break wherever a point is missing
  for (const series of panel.series) {
    const dash = series.dashed === true ? ' stroke-dasharray="6 4"' : ''
    let segment: string[] = []
    const flush = (): void => {
      if (segment.length > 1) {
        out.push(`<polyline points="${segment.join(' ')}" fill="none" stroke="${series.color}" stroke-width="2"${dash}/>`)
      }
      segment = []
    }
    for (const [i, [x, y]] of series.points.entries()) {
      if (!inRange(panel.x, x) || !inRange(panel.y, y)) {
        flush()
        continue
      }
      const px = round(sx(x))
      const py = round(sy(y))
      segment.push(`${px},${py}`)
      if (series.markers === true) {
        out.push(`<circle cx="${px}" cy="${py}" r="3.5" fill="${series.dashed === true ? 'white' : series.color}" stroke="${series.color}" stroke-width="1.5"/>`)
      }
      const label = series.labels?.[i]
      if (label != null && label !== '') {
        out.push(`<text x="${round(sx(x) + 6)}" y="${round(sy(y) - 6)}" font-size="10" fill="${series.color}">${escape(label)}</text>`)
      }
    }
    flush()
  }
  for (const [i, note] of (panel.notes ?? []).entries()) {
    const y = y0 - 8 - ((panel.notes?.length ?? 0) - 1 - i) * 14
    out.push(`<text x="${round(x1 - 6)}" y="${round(y)}" text-anchor="end" font-size="11" fill="#333">${escape(note)}</text>`)
  }
  return out.join('\n')
}

/**
 * An SVG document: `title`, one legend (every distinct series name), then `panels` in a
 * grid of `columns`.
 */
export function figure (title: string, panels: Panel[], options: FigureOptions = {}): string {
  const columns = Math.max(1, Math.min(options.columns ?? 2, panels.length))
  const panelWidth = options.panelWidth ?? 440
  const panelHeight = options.panelHeight ?? 300
  const rows = Math.ceil(panels.length / columns)
  const width = columns * panelWidth
  // legend: one entry per distinct name, in order of appearance, wrapped to the width
  const seen = new Map<string, Series>()
  for (const series of panels.flatMap(p => p.series)) {
    if (!seen.has(series.name)) {
      seen.set(series.name, series)
    }
  }
  const entryWidth = (s: Series): number => 44 + s.name.length * LEGEND_CHAR_WIDTH
  const legendRows: Series[][] = [[]]
  let rowWidth = 0
  for (const series of seen.values()) {
    const current = legendRows[legendRows.length - 1] as Series[]
    if (current.length > 0 && rowWidth + entryWidth(series) > width - 20) {
      legendRows.push([series])
      rowWidth = entryWidth(series)
    } else {
      current.push(series)
      rowWidth += entryWidth(series)
    }
  }
  const legendHeight = legendRows.length * LEGEND_ROW_HEIGHT + 6
  const height = TITLE_HEIGHT + legendHeight + rows * panelHeight
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="16" font-weight="600">${escape(title)}</text>`
  ]
  for (const [r, entries] of legendRows.entries()) {
    let x = (width - entries.reduce((sum, s) => sum + entryWidth(s), 0)) / 2
    const y = TITLE_HEIGHT + 10 + r * LEGEND_ROW_HEIGHT
    for (const series of entries) {
      const dash = series.dashed === true ? ' stroke-dasharray="6 4"' : ''
      out.push(`<line x1="${round(x)}" y1="${y}" x2="${round(x + 26)}" y2="${y}" stroke="${series.color}" stroke-width="2"${dash}/>`)
      out.push(`<text x="${round(x + 32)}" y="${y}" dy="4" font-size="12">${escape(series.name)}</text>`)
      x += entryWidth(series)
    }
  }
  for (const [i, panel] of panels.entries()) {
    const left = (i % columns) * panelWidth
    const top = TITLE_HEIGHT + legendHeight + Math.floor(i / columns) * panelHeight
    out.push(panelSvg(panel, left, top, panelWidth, panelHeight))
  }
  out.push('</svg>')
  return out.join('\n') + '\n'
}
