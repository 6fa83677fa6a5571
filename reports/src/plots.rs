//! The figures, drawn with plotters into SVG strings (no font files: text stays `<text>`).
//!
//! Every figure has its title and legend above the plot (never over the data), axis labels
//! with units, and the fixed colors of [`crate::style`]. Time-axis figures share one geometry
//! so that figures stacked on a page line up. Drawing never panics: a figure that cannot be
//! drawn becomes a short note in the page.

use crate::metrics::{GroupHeat, LeaderSegment, ScatterPoint, MS};
use crate::style::{self, FONT, INK, RIGHT_MARGIN, WIDTH, Y_LABEL_AREA};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use quorumlab_kv::history::EventType;
use quorumlab_workloads::LeaderChange;
use std::panic::{catch_unwind, AssertUnwindSafe};

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// A labelled, colored series of (x, y) points.
pub type Series = (String, RGBColor, Vec<(f64, f64)>);
/// A labelled, colored time series whose gaps are `None`.
pub type TimeSeries = (String, RGBColor, Vec<(f64, Option<f64>)>);
type Res = Result<(), String>;
type TimeChart<'a, 'b, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y>>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

const LEFT_MARGIN: u32 = 10;
const X_LABEL_AREA: u32 = 48;
const TITLE_H: u32 = 30;
const LEGEND_ROW_H: u32 = 22;
const TICK_FONT: u32 = 15;
const DESC_FONT: u32 = 16;
const LEGEND_FONT: u32 = 15;

/// The time axis shared by stacked figures: its end, the warm-up, and fault windows.
#[derive(Clone, Debug, Default)]
pub struct TimeAxis {
    pub span_s: f64,
    pub measure_from_s: f64,
    /// End of the measured window (ops completing after it are the last ones draining); 0:
    /// not shown.
    pub measure_to_s: f64,
    /// (start s, end s, label).
    pub faults: Vec<(f64, f64, String)>,
}

/// A figure's title, with an optional color square before it (the protocol's color).
#[derive(Clone, Debug)]
pub struct Title {
    pub text: String,
    pub swatch: Option<RGBColor>,
}

impl Title {
    pub fn tagged(text: impl Into<String>, color: RGBColor) -> Self {
        Title {
            text: text.into(),
            swatch: Some(color),
        }
    }
}

impl From<&str> for Title {
    fn from(s: &str) -> Self {
        Title {
            text: s.to_string(),
            swatch: None,
        }
    }
}

impl From<String> for Title {
    fn from(s: String) -> Self {
        Title {
            text: s,
            swatch: None,
        }
    }
}

impl From<&String> for Title {
    fn from(s: &String) -> Self {
        s.as_str().into()
    }
}

impl std::fmt::Display for Title {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// How a legend item is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mark {
    Line,
    Box,
    Dot,
    /// A translucent box (shaded spans).
    Shade,
    /// A short vertical tick (events).
    Tick,
}

/// One legend entry.
#[derive(Clone, Debug)]
pub struct LegendItem {
    pub label: String,
    pub color: RGBColor,
    pub mark: Mark,
}

impl LegendItem {
    pub fn new(label: impl Into<String>, color: RGBColor, mark: Mark) -> Self {
        LegendItem {
            label: label.into(),
            color,
            mark,
        }
    }
}

/// Approximate width of `s` at `size` (plotters' SVG font size is size/1.24 px).
fn text_w(s: &str, size: u32) -> i32 {
    (s.chars().count() as f64 * f64::from(size) / 1.24 * 0.56).ceil() as i32
}

fn legend_rows(items: &[LegendItem], width: u32) -> Vec<Vec<(i32, &LegendItem)>> {
    let mut rows: Vec<Vec<(i32, &LegendItem)>> = vec![Vec::new()];
    let start = (LEFT_MARGIN + Y_LABEL_AREA) as i32;
    let mut x = start;
    for it in items {
        let w = 26 + text_w(&it.label, LEGEND_FONT) + 18;
        if x + w > width as i32 - 10 && x > start {
            rows.push(Vec::new());
            x = start;
        }
        rows.last_mut().expect("a row").push((x, it));
        x += w;
    }
    if rows.len() == 1 && rows[0].is_empty() {
        rows.clear();
    }
    rows
}

/// Height of the title and legend strip above a figure.
fn header_h(items: &[LegendItem], width: u32) -> u32 {
    TITLE_H + legend_rows(items, width).len() as u32 * LEGEND_ROW_H + 4
}

/// Draws the title and the legend; returns the area below them.
fn header<'a>(root: &Area<'a>, title: &Title, items: &[LegendItem]) -> Result<Area<'a>, String> {
    let (w, _) = root.dim_in_pixel();
    let h = header_h(items, w);
    let (top, rest) = root.split_vertically(h);
    let tstyle = (FONT, 20)
        .into_font()
        .style(FontStyle::Bold)
        .color(&INK)
        .pos(Pos::new(HPos::Left, VPos::Top));
    let mut tx = (LEFT_MARGIN + 4) as i32;
    if let Some(c) = title.swatch {
        top.draw(&Rectangle::new([(tx, 7), (tx + 16, 23)], c.filled()))
            .map_err(err)?;
        tx += 24;
    }
    top.draw_text(&title.text, &tstyle, (tx, 6)).map_err(err)?;
    let lstyle = (FONT, LEGEND_FONT)
        .into_font()
        .color(&INK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (r, row) in legend_rows(items, w).iter().enumerate() {
        let y = (TITLE_H + r as u32 * LEGEND_ROW_H + LEGEND_ROW_H / 2) as i32;
        for &(x, it) in row {
            let c = it.color;
            match it.mark {
                Mark::Line => top.draw(&PathElement::new(
                    vec![(x, y), (x + 20, y)],
                    ShapeStyle::from(&c).stroke_width(3),
                )),
                Mark::Box => top.draw(&Rectangle::new(
                    [(x + 2, y - 6), (x + 18, y + 6)],
                    c.filled(),
                )),
                Mark::Shade => top.draw(&Rectangle::new(
                    [(x + 2, y - 7), (x + 18, y + 7)],
                    c.mix(0.18).filled(),
                )),
                Mark::Dot => top.draw(&Circle::new((x + 10, y), 4, c.filled())),
                Mark::Tick => top.draw(&PathElement::new(
                    vec![(x + 10, y - 8), (x + 10, y + 8)],
                    ShapeStyle::from(&c).stroke_width(3),
                )),
            }
            .map_err(err)?;
            top.draw_text(&it.label, &lstyle, (x + 26, y))
                .map_err(err)?;
        }
    }
    Ok(rest)
}

/// Renders a figure to an SVG string; a failure (or a panic inside plotters) becomes a note.
pub fn svg(width: u32, height: u32, draw: impl FnOnce(&Area<'_>) -> Res) -> String {
    let mut buf = String::new();
    let res = catch_unwind(AssertUnwindSafe(|| -> Res {
        let root = SVGBackend::with_string(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)
    }));
    match res {
        Ok(Ok(())) => buf,
        Ok(Err(e)) => note(&format!("this figure could not be drawn: {e}")),
        Err(_) => note("this figure could not be drawn (plotting failed)"),
    }
}

/// A placeholder paragraph in place of a figure.
pub fn note(text: &str) -> String {
    format!("<p class=\"note\">{}</p>", crate::html::esc(text))
}

fn font(size: u32, c: RGBColor) -> TextStyle<'static> {
    (FONT, size).into_font().color(&c)
}

/// Formats a time-axis tick: whole seconds without decimals.
fn fmt_s(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else if v.abs() < 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

/// Formats a latency in ms for a log axis.
pub fn fmt_ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{}s", fmt_num(v / 1000.0))
    } else if v >= 1.0 {
        format!("{}ms", fmt_num(v))
    } else {
        format!("{}µs", fmt_num(v * 1000.0))
    }
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 || (v - v.round()).abs() < 1e-6 {
        format!("{}", v.round() as i64)
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// Tick values for a log axis: 1-2-5 × 10^k inside `[lo, hi]` (powers of ten only when that
/// would be too many).
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && lo.is_finite() && hi.is_finite()) {
        return vec![];
    }
    let mut v = Vec::new();
    let mut p = 10f64.powf(lo.log10().floor());
    while p <= hi {
        for m in [1.0, 2.0, 5.0] {
            let x = p * m;
            if x >= lo && x <= hi {
                v.push(x);
            }
        }
        p *= 10.0;
    }
    if v.len() > 13 {
        v.retain(|x| (x.log10() - x.log10().round()).abs() < 1e-9);
    }
    if v.len() < 3 {
        // A narrow range: every 1..9 × 10^k.
        v.clear();
        let mut p = 10f64.powf(lo.log10().floor());
        while p <= hi {
            for m in 1..=9 {
                let x = p * f64::from(m);
                if x >= lo && x <= hi {
                    v.push(x);
                }
            }
            p *= 10.0;
        }
    }
    v
}

fn safe_range(lo: f64, hi: f64) -> (f64, f64) {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    if hi > lo {
        (lo, hi)
    } else {
        (lo, lo + 1.0)
    }
}

fn time_mesh<Y>(
    chart: &mut TimeChart<'_, '_, Y>,
    y_desc: &str,
    yfmt: &dyn Fn(&f64) -> String,
) -> Res
where
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>
        + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(y_desc)
        .axis_desc_style((FONT, DESC_FONT))
        .label_style((FONT, TICK_FONT))
        .bold_line_style(style::GRID)
        .light_line_style(TRANSPARENT)
        .x_labels(15)
        .y_labels(6)
        .x_label_formatter(&|v| fmt_s(*v))
        .y_label_formatter(yfmt)
        .draw()
        .map_err(err)
}

/// Plot width in px of a time chart (for deciding whether a label fits).
fn plot_width() -> f64 {
    f64::from(WIDTH - LEFT_MARGIN - Y_LABEL_AREA - RIGHT_MARGIN)
}

/// The union of fault windows, as disjoint sorted spans.
fn fault_union(axis: &TimeAxis) -> Vec<(f64, f64)> {
    let mut w: Vec<(f64, f64)> = axis
        .faults
        .iter()
        .map(|(a, b, _)| (*a, b.min(axis.span_s).max(*a)))
        .collect();
    w.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (a, b) in w {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Shades the spans outside the measured window and the fault windows (their union, so that
/// overlapping faults do not darken); marks each fault's start, and labels them when `labels`.
fn shade<Y>(
    chart: &mut TimeChart<'_, '_, Y>,
    axis: &TimeAxis,
    lo: f64,
    hi: f64,
    labels: bool,
) -> Res
where
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    let px_per_s = plot_width() / axis.span_s.max(1e-9);
    let gray = RGBColor(0x55, 0x55, 0x55);
    let mut outside: Vec<(f64, f64, &str)> = Vec::new();
    if axis.measure_from_s > 0.0 {
        outside.push((0.0, axis.measure_from_s.min(axis.span_s), "warm-up"));
    }
    if axis.measure_to_s > 0.0 && axis.measure_to_s < axis.span_s {
        outside.push((axis.measure_to_s, axis.span_s, "drain / final reads"));
    }
    for &(a, b, label) in &outside {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(a, lo), (b, hi)],
                style::WARMUP.mix(0.13).filled(),
            )))
            .map_err(err)?;
        if labels && (b - a) * px_per_s > f64::from(text_w(label, 14)) + 8.0 {
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((a, hi)) + Text::new(label, (4, 4), font(14, gray)),
                ))
                .map_err(err)?;
        }
    }
    for (a, b) in fault_union(axis) {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(a, lo), (b, hi)],
                style::FAULT.mix(0.10).filled(),
            )))
            .map_err(err)?;
    }
    let mut next_free = f64::NEG_INFINITY;
    for (a, _, label) in &axis.faults {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(*a, lo), (*a, hi)],
                ShapeStyle::from(&style::FAULT.mix(0.7)).stroke_width(2),
            )))
            .map_err(err)?;
        let x_px = a * px_per_s;
        if labels && x_px >= next_free && x_px + 40.0 < plot_width() {
            let w = text_w(label, 14);
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((*a, hi))
                        + Rectangle::new([(2, 2), (w + 8, 19)], WHITE.mix(0.85).filled())
                        + Text::new(label.clone(), (4, 4), font(14, RGBColor(0xa0, 0x1a, 0x1a))),
                ))
                .map_err(err)?;
            next_free = x_px + f64::from(w) + 12.0;
        }
    }
    Ok(())
}

/// Vertical lines at fault starts and ends (for figures whose cells would hide a shade).
fn fault_lines<Y>(chart: &mut TimeChart<'_, '_, Y>, axis: &TimeAxis, lo: f64, hi: f64) -> Res
where
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    for (a, b, _) in &axis.faults {
        for x in [*a, *b] {
            if x < axis.span_s {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x, lo), (x, hi)],
                        ShapeStyle::from(&INK).stroke_width(2),
                    )))
                    .map_err(err)?;
            }
        }
    }
    Ok(())
}

fn span_legend(axis: &TimeAxis) -> Vec<LegendItem> {
    let mut v = Vec::new();
    if axis.measure_from_s > 0.0 || (axis.measure_to_s > 0.0 && axis.measure_to_s < axis.span_s) {
        v.push(LegendItem::new(
            "outside the measured window",
            style::WARMUP,
            Mark::Shade,
        ));
    }
    if !axis.faults.is_empty() {
        v.push(LegendItem::new("fault window", style::FAULT, Mark::Shade));
    }
    v
}

fn outcome_legend() -> Vec<LegendItem> {
    vec![
        LegendItem::new("ok", style::OK, Mark::Box),
        LegendItem::new("fail: precondition false", style::FAIL_PRE, Mark::Box),
        LegendItem::new("fail: other", style::FAIL, Mark::Box),
        LegendItem::new("info (outcome unknown)", style::INFO, Mark::Box),
    ]
}

/// Completions in one time bucket, for [`outcome_bars`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BarBucket {
    pub start_s: f64,
    /// The bucket's width inside the run (the last one may be cut short).
    pub width_s: f64,
    pub ok: u64,
    pub fail_precondition: u64,
    pub fail_other: u64,
    pub info: u64,
}

impl BarBucket {
    pub fn total(&self) -> u64 {
        self.ok + self.fail_precondition + self.fail_other + self.info
    }
}

/// ok/fail/info completions per second, stacked, per time bucket.
pub fn outcome_bars(
    title: impl Into<Title>,
    buckets: &[BarBucket],
    axis: &TimeAxis,
    y_max: Option<f64>,
    plot_h: u32,
) -> String {
    let title: Title = title.into();
    let mut legend = outcome_legend();
    legend.extend(span_legend(axis));
    let height = header_h(&legend, WIDTH) + plot_h + X_LABEL_AREA;
    let rate = |n: u64, w: f64| n as f64 / w.max(1e-9);
    // Slivers (a last, cut-short bucket) do not set the scale.
    let wmax = buckets.iter().map(|b| b.width_s).fold(0.0, f64::max);
    let top = y_max.unwrap_or_else(|| {
        buckets
            .iter()
            .filter(|b| b.width_s >= wmax * 0.5)
            .map(|b| rate(b.total(), b.width_s))
            .fold(0.0, f64::max)
            * 1.15
    });
    let top = if top > 0.0 && top.is_finite() {
        top
    } else {
        1.0
    };
    svg(WIDTH, height, |root| {
        let area = header(root, &title, &legend)?;
        let mut chart = ChartBuilder::on(&area)
            .margin_left(LEFT_MARGIN)
            .margin_right(RIGHT_MARGIN)
            .margin_top(4)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(0.0..axis.span_s.max(1e-6), 0.0..top)
            .map_err(err)?;
        time_mesh(&mut chart, "completions (ops/s)", &|v| fmt_num(*v))?;
        shade(&mut chart, axis, 0.0, top, true)?;
        let mut rects = Vec::new();
        for bk in buckets {
            let (t, w) = (bk.start_s, bk.width_s);
            let mut y = 0.0;
            for (n, c) in [
                (bk.ok, style::OK),
                (bk.fail_precondition, style::FAIL_PRE),
                (bk.fail_other, style::FAIL),
                (bk.info, style::INFO),
            ] {
                if n > 0 {
                    let h = rate(n, w);
                    rects.push(Rectangle::new(
                        [(t, y), ((t + w).min(axis.span_s), (y + h).min(top))],
                        c.filled(),
                    ));
                    y += h;
                }
            }
        }
        chart.draw_series(rects).map_err(err)?;
        Ok(())
    })
}

/// A line per series over time (e.g. ok share, ok ops/s). `None` values break the line.
pub fn time_lines(
    title: impl Into<Title>,
    y_desc: &str,
    series: &[TimeSeries],
    axis: &TimeAxis,
    y_range: (f64, f64),
    percent: bool,
    plot_h: u32,
) -> String {
    let title: Title = title.into();
    let mut legend: Vec<LegendItem> = series
        .iter()
        .map(|(l, c, _)| LegendItem::new(l.clone(), *c, Mark::Line))
        .collect();
    legend.extend(span_legend(axis));
    let height = header_h(&legend, WIDTH) + plot_h + X_LABEL_AREA;
    let (lo, hi) = safe_range(y_range.0, y_range.1);
    svg(WIDTH, height, |root| {
        let area = header(root, &title, &legend)?;
        let mut chart = ChartBuilder::on(&area)
            .margin_left(LEFT_MARGIN)
            .margin_right(RIGHT_MARGIN)
            .margin_top(4)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(0.0..axis.span_s.max(1e-6), lo..hi)
            .map_err(err)?;
        let pct = |v: &f64| format!("{}%", (v * 100.0).round() as i64);
        let num = |v: &f64| fmt_num(*v);
        let yfmt: &dyn Fn(&f64) -> String = if percent { &pct } else { &num };
        time_mesh(&mut chart, y_desc, yfmt)?;
        shade(&mut chart, axis, lo, hi, true)?;
        for (_, c, pts) in series {
            let mut run: Vec<(f64, f64)> = Vec::new();
            let mut runs = Vec::new();
            for &(t, v) in pts {
                match v {
                    Some(v) if v.is_finite() => run.push((t, v.clamp(lo, hi))),
                    _ => {
                        if !run.is_empty() {
                            runs.push(std::mem::take(&mut run));
                        }
                    }
                }
            }
            if !run.is_empty() {
                runs.push(run);
            }
            for r in runs {
                if r.len() == 1 {
                    chart
                        .draw_series(std::iter::once(Circle::new(r[0], 2, c.filled())))
                        .map_err(err)?;
                } else {
                    chart
                        .draw_series(LineSeries::new(r, ShapeStyle::from(c).stroke_width(2)))
                        .map_err(err)?;
                }
            }
        }
        Ok(())
    })
}

/// Latency CDFs on a log latency axis: one line per series of (ms, fraction) points.
pub fn cdf(title: impl Into<Title>, series: &[Series], plot_h: u32) -> String {
    let title: Title = title.into();
    let nonempty: Vec<&Series> = series.iter().filter(|s| !s.2.is_empty()).collect();
    if nonempty.is_empty() {
        return note(&format!(
            "{title}: no ok operations in the measured window."
        ));
    }
    let legend: Vec<LegendItem> = nonempty
        .iter()
        .map(|(l, c, _)| LegendItem::new(l.clone(), *c, Mark::Line))
        .collect();
    let lo = nonempty
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .fold(f64::INFINITY, f64::min)
        .max(1e-3);
    let hi = nonempty
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .fold(0.0, f64::max);
    let (lo, hi) = (lo / 1.3, (hi * 1.3).max(lo * 2.0));
    let height = header_h(&legend, WIDTH) + plot_h + X_LABEL_AREA;
    svg(WIDTH, height, |root| {
        let area = header(root, &title, &legend)?;
        let mut chart = ChartBuilder::on(&area)
            .margin_left(LEFT_MARGIN)
            .margin_right(RIGHT_MARGIN)
            .margin_top(4)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(
                (lo..hi).log_scale().with_key_points(log_ticks(lo, hi)),
                0.0..1.0,
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("latency (log scale)")
            .y_desc("fraction of ok ops ≤ latency")
            .axis_desc_style((FONT, DESC_FONT))
            .label_style((FONT, TICK_FONT))
            .bold_line_style(style::GRID)
            .light_line_style(TRANSPARENT)
            .x_labels(12)
            .y_labels(6)
            .x_label_formatter(&|v| fmt_ms(*v))
            .y_label_formatter(&|v| format!("{:.1}", v))
            .draw()
            .map_err(err)?;
        for q in [0.5, 0.99] {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(lo, q), (hi, q)],
                    ShapeStyle::from(&RGBColor(0x99, 0x99, 0x99)).stroke_width(1),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((hi, q))
                        + Text::new(
                            if q == 0.5 { "p50" } else { "p99" },
                            (-4, -3),
                            font(13, RGBColor(0x66, 0x66, 0x66))
                                .pos(Pos::new(HPos::Right, VPos::Bottom)),
                        ),
                ))
                .map_err(err)?;
        }
        for (_, c, pts) in &nonempty {
            // Step shape: the fraction holds until the next recorded latency.
            let mut step: Vec<(f64, f64)> = Vec::with_capacity(pts.len() * 2 + 1);
            let mut prev_q = 0.0;
            for &(x, q) in pts.iter() {
                step.push((x, prev_q));
                step.push((x, q));
                prev_q = q;
            }
            chart
                .draw_series(LineSeries::new(step, ShapeStyle::from(c).stroke_width(2)))
                .map_err(err)?;
        }
        Ok(())
    })
}

/// The tail of latency distributions: the fraction of ok ops slower than a latency, both axes
/// on log scales, so that p99, p99.9 and the maximum can be told apart.
pub fn tail(title: impl Into<Title>, series: &[Series], plot_h: u32) -> String {
    let title: Title = title.into();
    let nonempty: Vec<&Series> = series.iter().filter(|s| !s.2.is_empty()).collect();
    if nonempty.is_empty() {
        return note(&format!(
            "{title}: no ok operations in the measured window."
        ));
    }
    let legend: Vec<LegendItem> = nonempty
        .iter()
        .map(|(l, c, _)| LegendItem::new(l.clone(), *c, Mark::Line))
        .collect();
    let xs = || nonempty.iter().flat_map(|s| s.2.iter().map(|p| p.0));
    let lo = xs().fold(f64::INFINITY, f64::min).max(1e-3);
    let hi = xs().fold(0.0, f64::max);
    let (lo, hi) = (lo / 1.3, (hi * 1.3).max(lo * 2.0));
    // Down to one op in the largest series.
    let smallest = nonempty
        .iter()
        .filter_map(|s| {
            let n = s.2.len();
            (n >= 2).then(|| (1.0 - s.2[n - 2].1).max(1e-6))
        })
        .fold(1e-2_f64, f64::min);
    let ylo = 10f64.powf(smallest.log10().floor()).clamp(1e-6, 1e-2);
    let height = header_h(&legend, WIDTH) + plot_h + X_LABEL_AREA;
    svg(WIDTH, height, |root| {
        let area = header(root, &title, &legend)?;
        let yt: Vec<f64> = log_ticks(ylo, 1.0)
            .into_iter()
            .filter(|v| (v.log10() - v.log10().round()).abs() < 1e-9)
            .collect();
        let mut chart = ChartBuilder::on(&area)
            .margin_left(LEFT_MARGIN)
            .margin_right(RIGHT_MARGIN)
            .margin_top(4)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(
                (lo..hi).log_scale().with_key_points(log_ticks(lo, hi)),
                (ylo..1.0).log_scale().with_key_points(yt),
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("latency (log scale)")
            .y_desc("fraction of ok ops slower")
            .axis_desc_style((FONT, DESC_FONT))
            .label_style((FONT, TICK_FONT))
            .bold_line_style(style::GRID)
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&|v| fmt_ms(*v))
            .y_label_formatter(&|v| {
                let p = v * 100.0;
                if p >= 1.0 {
                    format!("{}%", p.round())
                } else {
                    let s = format!("{p:.6}");
                    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
                }
            })
            .draw()
            .map_err(err)?;
        for (q, label) in [(0.01, "p99"), (0.001, "p99.9")] {
            if q < ylo {
                continue;
            }
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(lo, q), (hi, q)],
                    ShapeStyle::from(&RGBColor(0x99, 0x99, 0x99)).stroke_width(1),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((hi, q))
                        + Text::new(
                            label,
                            (-4, -3),
                            font(13, RGBColor(0x66, 0x66, 0x66))
                                .pos(Pos::new(HPos::Right, VPos::Bottom)),
                        ),
                ))
                .map_err(err)?;
        }
        for (_, c, pts) in &nonempty {
            let mut step: Vec<(f64, f64)> = Vec::with_capacity(pts.len() * 2 + 1);
            let mut prev = 1.0;
            for &(x, q) in pts.iter() {
                let above = (1.0 - q).max(0.0);
                step.push((x, prev));
                if above < ylo {
                    break;
                }
                step.push((x, above));
                prev = above;
            }
            chart
                .draw_series(LineSeries::new(step, ShapeStyle::from(c).stroke_width(2)))
                .map_err(err)?;
        }
        Ok(())
    })
}

/// Each op's latency at its invocation time (log scale), colored by outcome.
pub fn latency_scatter(
    title: impl Into<Title>,
    points: &[ScatterPoint],
    total: usize,
    axis: &TimeAxis,
    plot_h: u32,
) -> String {
    let title: Title = title.into();
    if points.is_empty() {
        return note(&format!("{title}: no completed operations."));
    }
    let mut legend = outcome_legend();
    legend.extend(span_legend(axis));
    if total > points.len() {
        legend.push(LegendItem::new(
            format!(
                "{} of {} ops shown (sampled evenly per outcome; rare outcomes kept)",
                points.len(),
                total
            ),
            RGBColor(0xff, 0xff, 0xff),
            Mark::Box,
        ));
    }
    let ms = |ns: u64| (ns as f64 / MS as f64).max(1e-3);
    let lo = points
        .iter()
        .map(|p| ms(p.latency_ns))
        .fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| ms(p.latency_ns)).fold(0.0, f64::max);
    let (lo, hi) = (lo / 1.5, (hi * 1.5).max(lo * 3.0));
    let height = header_h(&legend, WIDTH) + plot_h + X_LABEL_AREA;
    svg(WIDTH, height, |root| {
        let area = header(root, &title, &legend)?;
        let mut chart = ChartBuilder::on(&area)
            .margin_left(LEFT_MARGIN)
            .margin_right(RIGHT_MARGIN)
            .margin_top(4)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(
                0.0..axis.span_s.max(1e-6),
                (lo..hi).log_scale().with_key_points(log_ticks(lo, hi)),
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("invocation time (s)")
            .y_desc("latency (log scale)")
            .axis_desc_style((FONT, DESC_FONT))
            .label_style((FONT, TICK_FONT))
            .bold_line_style(style::GRID)
            .light_line_style(TRANSPARENT)
            .x_labels(15)
            .y_labels(8)
            .x_label_formatter(&|v| fmt_s(*v))
            .y_label_formatter(&|v| fmt_ms(*v))
            .draw()
            .map_err(err)?;
        shade(&mut chart, axis, lo, hi, true)?;
        for (kind, pre, c, r) in [
            (EventType::Ok, false, style::OK, 2),
            (EventType::Fail, true, style::FAIL_PRE, 2),
            (EventType::Fail, false, style::FAIL, 3),
            (EventType::Info, false, style::INFO, 3),
        ] {
            chart
                .draw_series(
                    points
                        .iter()
                        .filter(|p| {
                            p.outcome == kind && (kind != EventType::Fail || p.precondition == pre)
                        })
                        .map(|p| {
                            Circle::new((p.invoke_ns as f64 / 1e9, ms(p.latency_ns)), r, c.filled())
                        }),
                )
                .map_err(err)?;
        }
        Ok(())
    })
}

fn group_mesh<Y>(chart: &mut TimeChart<'_, '_, Y>, groups: usize) -> Res
where
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>
        + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let g = groups;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("group")
        .axis_desc_style((FONT, DESC_FONT))
        .label_style((FONT, TICK_FONT))
        .disable_y_mesh()
        .bold_line_style(style::GRID)
        .light_line_style(TRANSPARENT)
        .x_labels(15)
        .y_labels(g.min(12))
        .x_label_formatter(&|v| fmt_s(*v))
        .y_label_formatter(&|v| {
            let r = v.round();
            if (v - r).abs() < 1e-6 && r >= 0.0 && (r as usize) < g {
                format!("g{}", r as usize)
            } else {
                String::new()
            }
        })
        .draw()
        .map_err(err)
}

fn rows_h(groups: usize) -> u32 {
    (groups as u32 * 18).clamp(50, 420)
}

/// Share of ok ops per group and time bucket (red = none ok, green = all ok, gray = no ops).
pub fn heatmap(title: impl Into<Title>, heat: &GroupHeat, axis: &TimeAxis) -> String {
    let title: Title = title.into();
    let groups = heat.ok.len();
    if groups == 0 {
        return note(&format!("{title}: no groups."));
    }
    let mut legend: Vec<LegendItem> = [0.0, 0.25, 0.5, 0.75, 1.0]
        .iter()
        .map(|&s| {
            LegendItem::new(
                format!("{}% ok", (s * 100.0) as u32),
                style::share_color(s),
                Mark::Box,
            )
        })
        .collect();
    legend.push(LegendItem::new(
        "no op completed",
        style::NO_DATA,
        Mark::Box,
    ));
    if !axis.faults.is_empty() {
        legend.push(LegendItem::new("fault start / end", INK, Mark::Tick));
    }
    let height = header_h(&legend, WIDTH) + rows_h(groups) + X_LABEL_AREA;
    let bucket_s = heat.bucket_ns as f64 / 1e9;
    svg(WIDTH, height, |root| {
        let area = header(root, &title, &legend)?;
        let (lo, hi) = (-0.5, groups as f64 - 0.5);
        let mut chart = ChartBuilder::on(&area)
            .margin_left(LEFT_MARGIN)
            .margin_right(RIGHT_MARGIN)
            .margin_top(4)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(0.0..axis.span_s.max(1e-6), lo..hi)
            .map_err(err)?;
        group_mesh(&mut chart, groups)?;
        let mut rects = Vec::new();
        for g in 0..groups {
            let n = heat.ok[g].len();
            let color_of = |b: usize| -> RGBColor {
                match heat.share(g, b) {
                    // Quantized so that runs of similar cells merge into one rectangle.
                    Some(s) => style::share_color((s * 20.0).round() / 20.0),
                    None => style::NO_DATA,
                }
            };
            let mut b = 0;
            while b < n {
                let c = color_of(b);
                let mut e = b + 1;
                while e < n && color_of(e) == c {
                    e += 1;
                }
                let (x0, x1) = (b as f64 * bucket_s, (e as f64 * bucket_s).min(axis.span_s));
                rects.push(Rectangle::new(
                    [(x0, g as f64 - 0.45), (x1, g as f64 + 0.45)],
                    c.filled(),
                ));
                b = e;
            }
        }
        chart.draw_series(rects).map_err(err)?;
        fault_lines(&mut chart, axis, lo, hi)?;
        Ok(())
    })
}

/// Who leads each group over time; elections marked with a tick.
pub fn leadership(
    title: impl Into<Title>,
    segments: &[LeaderSegment],
    elections: &[LeaderChange],
    groups: usize,
    nodes: usize,
    axis: &TimeAxis,
) -> String {
    let title: Title = title.into();
    if groups == 0 {
        return note(&format!("{title}: no groups."));
    }
    let mut leaders: Vec<usize> = segments.iter().filter_map(|s| s.leader).collect();
    leaders.sort_unstable();
    leaders.dedup();
    // Leaders that share a color (more nodes than colors) share a legend entry.
    let mut by_color: Vec<(RGBColor, Vec<String>)> = Vec::new();
    for &n in &leaders {
        let c = style::node_color(n);
        let name = crate::metrics::endpoint_name(n, nodes);
        match by_color.iter_mut().find(|(k, _)| *k == c) {
            Some((_, v)) => v.push(name),
            None => by_color.push((c, vec![name])),
        }
    }
    let mut legend: Vec<LegendItem> = by_color
        .into_iter()
        .map(|(c, names)| LegendItem::new(format!("leader {}", names.join("/")), c, Mark::Box))
        .collect();
    legend.push(LegendItem::new("no leader", style::NO_DATA, Mark::Box));
    legend.push(LegendItem::new(
        "election (sampled every 10 ms)",
        INK,
        Mark::Tick,
    ));
    if !axis.faults.is_empty() {
        legend.push(LegendItem::new("fault window", style::FAULT, Mark::Shade));
    }
    let height = header_h(&legend, WIDTH) + rows_h(groups) + X_LABEL_AREA;
    let px_per_s = plot_width() / axis.span_s.max(1e-9);
    svg(WIDTH, height, |root| {
        let area = header(root, &title, &legend)?;
        let (lo, hi) = (-0.5, groups as f64 - 0.5);
        let mut chart = ChartBuilder::on(&area)
            .margin_left(LEFT_MARGIN)
            .margin_right(RIGHT_MARGIN)
            .margin_top(4)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(0.0..axis.span_s.max(1e-6), lo..hi)
            .map_err(err)?;
        group_mesh(&mut chart, groups)?;
        let mut ax = axis.clone();
        ax.measure_from_s = 0.0;
        ax.measure_to_s = 0.0;
        shade(&mut chart, &ax, lo, hi, false)?;
        let row_px = f64::from(rows_h(groups)) / groups as f64;
        for s in segments.iter().filter(|s| s.group < groups) {
            let (x0, x1) = (s.from_ns as f64 / 1e9, s.to_ns as f64 / 1e9);
            let g = s.group as f64;
            let c = match s.leader {
                Some(n) => style::node_color(n).mix(0.75),
                None => style::NO_DATA.mix(1.0),
            };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, g - 0.4), (x1, g + 0.4)],
                    c.filled(),
                )))
                .map_err(err)?;
            if let Some(n) = s.leader {
                let label = format!("{} t{}", crate::metrics::endpoint_name(n, nodes), s.term);
                if (x1 - x0) * px_per_s > f64::from(text_w(&label, 13)) + 8.0 && row_px >= 13.0 {
                    chart
                        .draw_series(std::iter::once(
                            EmptyElement::at((x0, g))
                                + Text::new(
                                    label,
                                    (4, 0),
                                    font(13, INK).pos(Pos::new(HPos::Left, VPos::Center)),
                                ),
                        ))
                        .map_err(err)?;
                }
            }
        }
        chart
            .draw_series(elections.iter().filter(|e| e.group < groups).map(|e| {
                let (t, g) = (e.time_ns as f64 / 1e9, e.group as f64);
                PathElement::new(
                    vec![(t, g - 0.48), (t, g + 0.48)],
                    ShapeStyle::from(&INK).stroke_width(2),
                )
            }))
            .map_err(err)?;
        Ok(())
    })
}

/// Horizontal bars with their values written at the end.
pub fn hbars(
    title: impl Into<Title>,
    x_desc: &str,
    items: &[(String, f64, RGBColor)],
    fmt: &dyn Fn(f64) -> String,
) -> String {
    let title: Title = title.into();
    if items.is_empty() {
        return note(&format!("{title}: nothing to show."));
    }
    let n = items.len();
    let label_w = items
        .iter()
        .map(|i| text_w(&i.0, TICK_FONT))
        .max()
        .unwrap_or(40)
        .clamp(60, 260) as u32
        + 16;
    let height = TITLE_H + 10 + (n as u32 * 30).max(60) + X_LABEL_AREA;
    let max = items.iter().map(|i| i.1).fold(0.0, f64::max);
    let max = if max > 0.0 && max.is_finite() {
        max * 1.18
    } else {
        1.0
    };
    let names: Vec<String> = items.iter().map(|i| i.0.clone()).collect();
    svg(WIDTH, height, |root| {
        let area = header(root, &title, &[])?;
        let mut chart = ChartBuilder::on(&area)
            .margin_left(LEFT_MARGIN)
            .margin_right(RIGHT_MARGIN)
            .margin_top(4)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(label_w)
            .build_cartesian_2d(0.0..max, (0..n as i32).into_segmented())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .axis_desc_style((FONT, DESC_FONT))
            .label_style((FONT, TICK_FONT))
            .bold_line_style(style::GRID)
            .light_line_style(TRANSPARENT)
            .disable_y_mesh()
            .set_tick_mark_size(LabelAreaPosition::Left, 0)
            .y_labels(n)
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    // Row 0 at the top.
                    let k = n as i32 - 1 - *i;
                    names.get(k as usize).cloned().unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            })
            .draw()
            .map_err(err)?;
        for (k, (_, v, c)) in items.iter().enumerate() {
            let i = n as i32 - 1 - k as i32;
            let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(i)),
                        (v, SegmentValue::Exact(i + 1)),
                    ],
                    c.filled(),
                )))
                .map_err(err)?;
            let (px, py0) = chart.backend_coord(&(v, SegmentValue::Exact(i)));
            let (_, py1) = chart.backend_coord(&(v, SegmentValue::Exact(i + 1)));
            root.draw_text(
                &fmt(v),
                &font(14, INK).pos(Pos::new(HPos::Left, VPos::Center)),
                (px + 6, (py0 + py1) / 2),
            )
            .map_err(err)?;
        }
        Ok(())
    })
}

/// One line of a sweep figure: a protocol's mean and 95% CI at each x.
#[derive(Clone, Debug)]
pub struct SweepLine {
    pub label: String,
    pub color: RGBColor,
    /// (x, mean, ci95 half-width).
    pub points: Vec<(f64, f64, f64)>,
}

/// The axes of a sweep figure.
#[derive(Clone, Debug, Default)]
pub struct SweepAxes {
    pub x_desc: String,
    pub y_desc: String,
    /// Tick labels when x is categorical (x = 0, 1, ...).
    pub categories: Option<Vec<String>>,
    pub log_x: bool,
    /// Ticks at these x values (the swept values), when numeric.
    pub x_ticks: Vec<f64>,
    /// A y range shared with sibling panels; computed from the data when `None`.
    pub y_range: Option<(f64, f64)>,
}

/// The y range of sweep lines: means ± CIs, padded, at or above zero when every mean is.
pub fn sweep_y_range(lines: &[SweepLine]) -> Option<(f64, f64)> {
    let pts: Vec<(f64, f64, f64)> = lines
        .iter()
        .flat_map(|l| l.points.iter().copied())
        .collect();
    if pts.is_empty() {
        return None;
    }
    // A metric whose means are all non-negative keeps its axis at or above zero (an interval
    // reaching below zero is cut at the axis).
    let nonneg = pts.iter().all(|p| p.1 >= 0.0);
    let ylo = pts.iter().map(|p| p.1 - p.2).fold(f64::INFINITY, f64::min);
    let yhi = pts
        .iter()
        .map(|p| p.1 + p.2)
        .fold(f64::NEG_INFINITY, f64::max);
    let ylo = if nonneg { ylo.max(0.0) } else { ylo };
    let pad = ((yhi - ylo) * 0.1).max(yhi.abs() * 0.05).max(1e-9);
    Some(safe_range(
        if nonneg {
            (ylo - pad).max(0.0)
        } else {
            ylo - pad
        },
        yhi + pad,
    ))
}

/// A metric against a parameter: mean with 95% confidence intervals, one line per protocol.
/// `categories`: tick labels when x is categorical (x = 0, 1, ...). (See [`sweep_figure`] for
/// ticks at given values and a shared y range.)
pub fn sweep_lines(
    title: impl Into<Title>,
    x_desc: &str,
    y_desc: &str,
    lines: &[SweepLine],
    categories: Option<&[String]>,
    log_x: bool,
) -> String {
    let mut ticks: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .collect();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    if ticks.len() > 12 {
        ticks.clear();
    }
    sweep_figure(
        title,
        lines,
        &SweepAxes {
            x_desc: x_desc.to_string(),
            y_desc: y_desc.to_string(),
            categories: categories.map(|c| c.to_vec()),
            log_x,
            x_ticks: ticks,
            y_range: None,
        },
    )
}

/// [`sweep_lines`] with every axis option.
pub fn sweep_figure(title: impl Into<Title>, lines: &[SweepLine], axes: &SweepAxes) -> String {
    let title: Title = title.into();
    let x_desc = axes.x_desc.as_str();
    let y_desc = axes.y_desc.as_str();
    let categories = axes.categories.as_deref();
    let log_x = axes.log_x;
    let pts: Vec<(f64, f64, f64)> = lines
        .iter()
        .flat_map(|l| l.points.iter().copied())
        .collect();
    if pts.is_empty() {
        return note(&format!("{title}: no values."));
    }
    let mut legend: Vec<LegendItem> = lines
        .iter()
        .map(|l| LegendItem::new(l.label.clone(), l.color, Mark::Line))
        .collect();
    legend.push(LegendItem::new(
        "95% confidence interval of the mean",
        INK,
        Mark::Tick,
    ));
    let xs = pts.iter().map(|p| p.0);
    let (xlo, xhi) = (
        xs.clone().fold(f64::INFINITY, f64::min),
        xs.fold(f64::NEG_INFINITY, f64::max),
    );
    let (ylo, yhi) = axes
        .y_range
        .or_else(|| sweep_y_range(lines))
        .unwrap_or((0.0, 1.0));
    let log_x = log_x && categories.is_none() && xlo > 0.0;
    let (xlo, xhi) = if categories.is_some() {
        (xlo - 0.5, xhi + 0.5)
    } else if log_x {
        (xlo / 1.25, xhi * 1.25)
    } else {
        let p = ((xhi - xlo) * 0.06).max(xhi.abs() * 0.05).max(1e-9);
        (xlo - p, xhi + p)
    };
    let height = header_h(&legend, WIDTH) + 380 + X_LABEL_AREA;
    let cats: Vec<String> = categories.map(|c| c.to_vec()).unwrap_or_default();
    svg(WIDTH, height, |root| {
        let area = header(root, &title, &legend)?;
        let num_fmt = |v: &f64| fmt_num_signed(*v);
        // Pixel positions of (mean, mean - ci, mean + ci) of every point, whatever the x scale.
        type Px = ((i32, i32), (i32, i32), (i32, i32));
        let map = |coord: &dyn Fn(f64, f64) -> (i32, i32)| -> Vec<Vec<Px>> {
            lines
                .iter()
                .map(|l| {
                    l.points
                        .iter()
                        .map(|&(x, m, ci)| {
                            let c = |y: f64| coord(x, y.clamp(ylo, yhi));
                            (c(m), c(m - ci), c(m + ci))
                        })
                        .collect()
                })
                .collect()
        };
        let px: Vec<Vec<Px>> = if log_x {
            let mut chart = ChartBuilder::on(&area)
                .margin_left(LEFT_MARGIN)
                .margin_right(RIGHT_MARGIN)
                .margin_top(4)
                .x_label_area_size(X_LABEL_AREA)
                .y_label_area_size(Y_LABEL_AREA)
                .build_cartesian_2d(
                    (xlo..xhi).log_scale().with_key_points(axes.x_ticks.clone()),
                    ylo..yhi,
                )
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc(y_desc)
                .axis_desc_style((FONT, DESC_FONT))
                .label_style((FONT, TICK_FONT))
                .bold_line_style(style::GRID)
                .light_line_style(TRANSPARENT)
                .x_label_formatter(&|v| fmt_num_signed(*v))
                .y_label_formatter(&num_fmt)
                .draw()
                .map_err(err)?;
            map(&|x, y| chart.backend_coord(&(x, y)))
        } else {
            let mut chart = ChartBuilder::on(&area)
                .margin_left(LEFT_MARGIN)
                .margin_right(RIGHT_MARGIN)
                .margin_top(4)
                .x_label_area_size(X_LABEL_AREA)
                .y_label_area_size(Y_LABEL_AREA)
                .build_cartesian_2d(xlo..xhi, ylo..yhi)
                .map_err(err)?;
            // x ticks exactly at the swept values (or categories): drawn by hand below.
            let ticks: Vec<(f64, String)> = if categories.is_some() {
                cats.iter()
                    .enumerate()
                    .map(|(i, c)| (i as f64, c.clone()))
                    .collect()
            } else {
                axes.x_ticks
                    .iter()
                    .map(|&v| (v, fmt_num_signed(v)))
                    .collect()
            };
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc(y_desc)
                .axis_desc_style((FONT, DESC_FONT))
                .label_style((FONT, TICK_FONT))
                .bold_line_style(style::GRID)
                .light_line_style(TRANSPARENT)
                .disable_x_mesh()
                .x_labels(if ticks.is_empty() { 10 } else { 0 })
                .x_label_formatter(&num_fmt)
                .y_label_formatter(&num_fmt)
                .draw()
                .map_err(err)?;
            let tick_style = font(TICK_FONT, INK).pos(Pos::new(HPos::Center, VPos::Top));
            for (v, label) in &ticks {
                let (x, y0) = chart.backend_coord(&(*v, ylo));
                let (_, y1) = chart.backend_coord(&(*v, yhi));
                root.draw(&PathElement::new(
                    vec![(x, y1), (x, y0)],
                    ShapeStyle::from(&style::GRID).stroke_width(1),
                ))
                .map_err(err)?;
                root.draw(&PathElement::new(
                    vec![(x, y0), (x, y0 + 5)],
                    ShapeStyle::from(&INK).stroke_width(1),
                ))
                .map_err(err)?;
                root.draw_text(label, &tick_style, (x, y0 + 8))
                    .map_err(err)?;
            }
            map(&|x, y| chart.backend_coord(&(x, y)))
        };
        let k = lines.len() as i32;
        for (li, l) in lines.iter().enumerate() {
            let dx = (li as i32 * 2 - (k - 1)) * 3;
            let style = ShapeStyle::from(&l.color).stroke_width(2);
            let pts: Vec<(i32, i32)> = px[li].iter().map(|p| (p.0 .0 + dx, p.0 .1)).collect();
            if pts.len() > 1 {
                root.draw(&PathElement::new(pts.clone(), style))
                    .map_err(err)?;
            }
            for (i, &(mid, lo, hi)) in px[li].iter().enumerate() {
                let x = mid.0 + dx;
                if lo.1 != hi.1 {
                    root.draw(&PathElement::new(vec![(x, lo.1), (x, hi.1)], style))
                        .map_err(err)?;
                    for y in [lo.1, hi.1] {
                        root.draw(&PathElement::new(vec![(x - 4, y), (x + 4, y)], style))
                            .map_err(err)?;
                    }
                }
                root.draw(&Circle::new(pts[i], 4, l.color.filled()))
                    .map_err(err)?;
            }
        }
        Ok(())
    })
}

fn fmt_num_signed(v: f64) -> String {
    if v < 0.0 {
        format!("-{}", fmt_num(-v))
    } else if v != 0.0 && v.abs() < 0.01 {
        format!("{v:.0e}")
    } else {
        fmt_num(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_ms(0.5), "500µs");
        assert_eq!(fmt_ms(2.0), "2ms");
        assert_eq!(fmt_ms(1500.0), "1.5s");
        assert_eq!(fmt_s(12.0), "12");
        assert_eq!(fmt_num(0.25), "0.25");
    }

    #[test]
    fn empty_inputs_give_notes_not_panics() {
        let axis = TimeAxis {
            span_s: 0.0,
            measure_from_s: 0.0,
            measure_to_s: 0.0,
            faults: vec![],
        };
        assert!(cdf("x", &[], 300).contains("note"));
        assert!(latency_scatter("x", &[], 0, &axis, 300).contains("note"));
        assert!(outcome_bars("x", &[], &axis, None, 200).starts_with("<svg"));
        assert!(hbars("x", "y", &[], &|v| v.to_string()).contains("note"));
        assert!(sweep_lines("x", "a", "b", &[], None, false).contains("note"));
        assert!(sweep_figure("x", &[], &SweepAxes::default()).contains("note"));
    }
}
