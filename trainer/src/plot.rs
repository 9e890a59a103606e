//! PNG plots of a run, written next to its logs: accuracy per modality over epochs
//! (`accuracy.png`), the OGM coefficients and the audio/visual score ratio over steps
//! (`coefficients.png`, `ratio.png`). Drawn with plotters into a buffer, text in the embedded
//! DejaVu Sans (no system fonts needed), saved as PNG with `image`.

use std::ops::Range;
use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;

use crate::run_log::StepRecord;
use crate::run_log::{EpochLog, LocalizeEpoch};

/// One named line.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: &str, points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        Self { name: name.to_owned(), points: points.into_iter().collect() }
    }
}

const SIZE: (u32, u32) = (960, 540);

fn register_font() {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        // Registration only fails for a malformed font, and the embedded one is well-formed.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

fn span(values: impl Iterator<Item = f64>) -> Option<Range<f64>> {
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    (lo <= hi).then_some(if lo == hi { lo - 0.5..hi + 0.5 } else { lo..hi })
}

/// Draws `series` as lines into a PNG at `path`; `y` fixes the vertical range (else fitted).
pub fn line_chart(path: &Path, title: &str, x_desc: &str, y_desc: &str, series: &[Series], y: Option<Range<f64>>) -> Result<()> {
    register_font();
    let all = || series.iter().flat_map(|s| s.points.iter());
    let Some(x) = span(all().map(|p| p.0)) else { return Ok(()) };
    let y = match y {
        Some(y) => y,
        None => {
            let r = span(all().map(|p| p.1)).unwrap_or(0.0..1.0);
            let pad = (r.end - r.start) * 0.05;
            r.start - pad..r.end + pad
        }
    };
    let (w, h) = SIZE;
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
        let root = BitMapBackend::with_buffer(&mut buf, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x, y)
            .map_err(|e| err(&e))?;
        chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).label_style(("sans-serif", 15)).draw().map_err(|e| err(&e))?;
        for (i, s) in series.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), colour.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(s.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2)));
        }
        finish(chart, &root, SeriesLabelPosition::LowerRight, path)?;
    }
    save(path, w, h, buf)
}

type Chart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>;

/// Draws a chart's legend and presents its drawing area.
fn finish<'a, 'b: 'a>(
    mut chart: Chart<'a, 'b>,
    root: &DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    legend: SeriesLabelPosition,
    path: &Path,
) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(legend)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

/// Saves an RGB buffer of `w x h` as a PNG.
fn save(path: &Path, w: u32, h: u32, buf: Vec<u8>) -> Result<()> {
    let image = image::RgbImage::from_raw(w, h, buf).context("plot buffer size")?;
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png).with_context(|| format!("encoding {}", path.display()))?;
    Ok(datasets::durable::write_atomic(path, png.get_ref())?)
}

/// `coefficients.png` (the k_a, k_v the optimiser used per step: 1 outside the window or
/// without modulation) and `ratio.png` (score_a / score_v per step).
pub fn coefficient_plot(dir: &Path, steps: &[StepRecord]) -> Result<()> {
    let k = |f: fn(&StepRecord) -> f64| steps.iter().map(move |r| (r.step as f64, f(r))).collect::<Vec<_>>();
    let ratio = steps.iter().map(|r| (r.step as f64, r.ratio_a));
    line_chart(
        &dir.join("coefficients.png"),
        "OGM coefficients applied",
        "step",
        "k",
        &[Series::new("k_a (audio)", k(|r| r.k_a)), Series::new("k_v (visual)", k(|r| r.k_v))],
        Some(0.0..1.05),
    )?;
    line_chart(&dir.join("ratio.png"), "Uni-modal score ratio", "step", "score_a / score_v", &[Series::new("ratio_a", ratio)], None)
}

/// `accuracy.png` of a classifier run (test fused / audio / visual and val fused accuracy) and
/// the coefficient plots.
pub fn classifier_plots(dir: &Path, logs: &[EpochLog], steps: &[StepRecord]) -> Result<()> {
    let e = |f: fn(&EpochLog) -> f64| logs.iter().map(move |l| (l.epoch as f64, f(l))).collect::<Vec<_>>();
    let mut series = vec![
        Series::new("test fused", e(|l| l.test.fused.accuracy)),
        Series::new("test audio", e(|l| l.test.audio.accuracy)),
        Series::new("test visual", e(|l| l.test.visual.accuracy)),
    ];
    let val: Vec<_> = logs.iter().filter_map(|l| Some((l.epoch as f64, l.val?.fused.accuracy))).collect();
    if !val.is_empty() {
        series.push(Series::new("val fused", val));
    }
    line_chart(&dir.join("accuracy.png"), "Accuracy per modality", "epoch", "accuracy", &series, Some(0.0..1.0))?;
    coefficient_plot(dir, steps)
}

/// `accuracy.png` of a localization run (segment accuracy of each head and of event /
/// background segments) and the coefficient plots.
pub fn localization_plots(dir: &Path, logs: &[LocalizeEpoch], steps: &[StepRecord]) -> Result<()> {
    let e = |f: fn(&LocalizeEpoch) -> f64| logs.iter().map(move |l| (l.epoch as f64, f(l))).collect::<Vec<_>>();
    let series = [
        Series::new("test fused", e(|l| l.test.fused.all)),
        Series::new("test fused, event segments", e(|l| l.test.fused.event)),
        Series::new("test fused, background segments", e(|l| l.test.fused.background)),
        Series::new("test audio", e(|l| l.test.audio.all)),
        Series::new("test visual", e(|l| l.test.visual.all)),
        Series::new("val fused", e(|l| l.val.fused.all)),
    ];
    line_chart(&dir.join("accuracy.png"), "Segment-level accuracy", "epoch", "accuracy", &series, Some(0.0..1.0))?;
    coefficient_plot(dir, steps)
}

/// One series of a comparison chart: a mean and a spread per arm.
#[derive(Debug, Clone)]
pub struct Spread {
    pub name: String,
    /// `(mean, sd)` per arm, in the order of the arms' labels.
    pub values: Vec<(f64, f64)>,
}

/// A chart of several series' means with ± sd bars over named arms (`compare.png`).
pub fn spread_chart(path: &Path, title: &str, y_desc: &str, arms: &[String], series: &[Spread]) -> Result<()> {
    register_font();
    if arms.is_empty() {
        return Ok(());
    }
    let lo = series.iter().flat_map(|s| s.values.iter().map(|(m, sd)| m - sd)).fold(f64::INFINITY, f64::min);
    let hi = series.iter().flat_map(|s| s.values.iter().map(|(m, sd)| m + sd)).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi.is_finite() { (lo.min(0.0), hi.max(lo + 1e-3)) } else { (0.0, 1.0) };
    let (w, h) = (SIZE.0.max(160 * arms.len() as u32), SIZE.1);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let n = arms.len() as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(64)
            .y_label_area_size(64)
            // Headroom above the data for the legend.
            .build_cartesian_2d(-0.5..n - 0.5, lo..hi + (hi - lo) * 0.2)
            .map_err(|e| err(&e))?;
        let label = |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < arms.len() {
                arms[i as usize].clone()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .x_labels(arms.len() * 4 + 1)
            .x_label_formatter(&label)
            .disable_x_mesh()
            .y_desc(y_desc)
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| err(&e))?;
        let k = series.len().max(1) as f64;
        for (j, s) in series.iter().enumerate() {
            let colour = Palette99::pick(j).to_rgba();
            let offset = (j as f64 - (k - 1.0) / 2.0) * 0.18;
            let points: Vec<(f64, f64, f64)> = s.values.iter().enumerate().map(|(i, &(m, sd))| (i as f64 + offset, m, sd)).collect();
            chart
                .draw_series(points.iter().map(|&(x, m, sd)| ErrorBar::new_vertical(x, m - sd, m, m + sd, colour.filled(), 8)))
                .map_err(|e| err(&e))?
                .label(s.name.as_str())
                .legend(move |(x, y)| Circle::new((x + 12, y), 4, colour.filled()));
        }
        finish(chart, &root, SeriesLabelPosition::UpperRight, path)?;
    }
    save(path, w, h, buf)
}
