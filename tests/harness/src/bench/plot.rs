//! The open-loop benchmark's one plot: p99 create → Approved against the offered rate, one line
//! per approver, both axes logarithmic, with the latency limit that defines the knee drawn
//! across, as SVG and PNG. Text is laid out (both formats) and drawn (PNG) with DejaVu Sans,
//! read from Debian's fonts-dejavu-core: no system font library is linked.

use std::path::Path;

use anyhow::Context as _;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::openloop::RatePoint;

/// Colours per approver, in the order the benchmark runs them.
fn colour(approver: &str) -> RGBColor {
    match approver {
        "ceiling" => RGBColor(90, 90, 90),
        "tlsboot" => RGBColor(31, 119, 180),
        "tlsboot-qps20" => RGBColor(44, 160, 44),
        "kcm" => RGBColor(214, 39, 40),
        _ => RGBColor(148, 103, 189),
    }
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    points: &[RatePoint],
    kind: &str,
    limit_ms: f64,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let mine: Vec<&RatePoint> = points
        .iter()
        .filter(|p| p.kind == kind && p.measured)
        .collect();
    let rates = mine.iter().map(|p| p.rate);
    let (rmin, rmax) = rates.fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(r), hi.max(r)));
    let lat = mine.iter().filter_map(|p| p.approved_ms_p99);
    let (lmin, lmax) = lat.fold((limit_ms, limit_ms), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("plot: {e}");
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("p99 create → Approved, {kind} CSRs (open loop, evenly spaced arrivals)"),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            ((rmin * 0.8)..(rmax * 1.25)).log_scale(),
            ((lmin * 0.5).max(1.0)..(lmax * 2.0)).log_scale(),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("offered rate (CSRs/s)")
        .y_desc("p99 latency (ms)")
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            [(rmin * 0.8, limit_ms), (rmax * 1.25, limit_ms)],
            BLACK.mix(0.4),
        ))
        .map_err(err)?
        .label(format!("{limit_ms} ms (knee limit)"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.4)));
    let mut approvers: Vec<&str> = mine.iter().map(|p| p.approver).collect();
    approvers.dedup();
    for approver in approvers {
        let c = colour(approver);
        // A point whose p99 is unknown (CSRs left unapproved) ends the line.
        let line: Vec<(f64, f64)> = mine
            .iter()
            .filter(|p| p.approver == approver)
            .map_while(|p| p.approved_ms_p99.map(|v| (p.rate, v)))
            .collect();
        chart
            .draw_series(LineSeries::new(line.clone(), c.stroke_width(2)))
            .map_err(err)?
            .label(approver)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(line.into_iter().map(|xy| Circle::new(xy, 4, c.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

const SIZE: (u32, u32) = (900, 560);

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Registers [`FONT`] as "sans-serif" once per process.
fn register_font() -> anyhow::Result<()> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let bytes = std::fs::read(FONT).map_err(|e| {
            format!("read the font {FONT}: {e} (apt-get install fonts-dejavu-core)")
        })?;
        // register_font wants 'static bytes; registered once per process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{FONT} is not a usable font"))
    })
    .clone()
    .map_err(|e| anyhow::anyhow!(e))
}

/// Writes the plot of `kind` to `path`: PNG for a `.png` file, SVG otherwise.
pub fn p99_against_rate(
    points: &[RatePoint],
    kind: &str,
    limit_ms: f64,
    path: &Path,
) -> anyhow::Result<()> {
    register_font()?;
    let drawn = if path.extension().is_some_and(|e| e == "png") {
        draw(
            BitMapBackend::new(path, SIZE).into_drawing_area(),
            points,
            kind,
            limit_ms,
        )
    } else {
        draw(
            SVGBackend::new(path, SIZE).into_drawing_area(),
            points,
            kind,
            limit_ms,
        )
    };
    drawn.with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::openloop::tests_support::point;
    use super::*;

    #[test]
    fn the_plot_has_one_line_per_approver_and_stops_at_an_unknown_p99() {
        if std::fs::metadata(FONT).is_err() {
            eprintln!("skipped: no {FONT}");
            return;
        }
        let dir = std::env::temp_dir().join(format!("tlsboot-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pts = vec![
            point("ceiling", 5.0, Some(8.0)),
            point("ceiling", 50.0, Some(20.0)),
            point("kcm", 5.0, Some(17.0)),
            point("kcm", 50.0, None),
            // Not drawn: beyond the point whose p99 is unknown.
            point("kcm", 100.0, Some(30.0)),
        ];
        let svg = dir.join("p.svg");
        p99_against_rate(&pts, "client", 1000.0, &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(
            text.contains("\nceiling\n") && text.contains("\nkcm\n"),
            "{text}"
        );
        // ceiling: a line of 2 points; kcm: its unknown p99 ends the line after 1 point.
        assert_eq!(text.matches("<circle").count(), 3, "{text}");
        let png = dir.join("p.png");
        p99_against_rate(&pts, "client", 1000.0, &png).unwrap();
        assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
