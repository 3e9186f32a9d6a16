//! SVG charts of the live series, drawn with `plotters` on the server (no script draws them,
//! so they show under the strict Content-Security-Policy and without JavaScript).

use plotters::prelude::*;
use rampart_proxy::stats::Series;

const W: u32 = 1180;
const H: u32 = 240;

fn clock(ms: u64) -> String {
    let s = ms / 1000 % 86_400;
    format!("{:02}:{:02}", s / 3600, s / 60 % 60)
}

/// Requests, blocks and would-blocks over the window.
pub(crate) fn traffic_svg(series: &Series) -> String {
    let lines: [(&str, RGBColor, Vec<f64>); 3] = [
        (
            "requests",
            RGBColor(0x2b, 0x6c, 0xb0),
            series.points.iter().map(|p| p.requests as f64).collect(),
        ),
        (
            "blocked",
            RGBColor(0xc5, 0x30, 0x30),
            series.points.iter().map(|p| p.blocked as f64).collect(),
        ),
        (
            "would block",
            RGBColor(0xdd, 0x8a, 0x10),
            series.points.iter().map(|p| p.would_block as f64).collect(),
        ),
    ];
    draw(series, "requests per bucket", &lines)
}

/// Latency percentiles over the window.
pub(crate) fn latency_svg(series: &Series) -> String {
    let pick = |f: fn(&rampart_proxy::stats::Point) -> Option<f64>| -> Vec<f64> {
        series.points.iter().map(|p| f(p).unwrap_or(0.0)).collect()
    };
    let lines: [(&str, RGBColor, Vec<f64>); 3] = [
        ("p50 ms", RGBColor(0x2f, 0x85, 0x5a), pick(|p| p.p50_ms)),
        ("p90 ms", RGBColor(0xb7, 0x79, 0x1f), pick(|p| p.p90_ms)),
        ("p99 ms", RGBColor(0x9b, 0x2c, 0x2c), pick(|p| p.p99_ms)),
    ];
    draw(series, "latency (ms)", &lines)
}

fn draw(series: &Series, y_desc: &str, lines: &[(&str, RGBColor, Vec<f64>)]) -> String {
    let mut buf = String::new();
    let n = series.points.len().max(2);
    let t0 = series.points.first().map_or(0, |p| p.time_ms);
    let step = series.step_ms;
    let y_max = lines
        .iter()
        .flat_map(|(_, _, v)| v.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.1;
    let result: Result<(), String> = (|| {
        let root = SVGBackend::with_string(&mut buf, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(48)
            .build_cartesian_2d(0usize..n - 1, 0f64..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .x_labels(7)
            .y_labels(5)
            .x_label_formatter(&|i| clock(t0 + *i as u64 * step))
            .y_desc(y_desc)
            .draw()
            .map_err(|e| e.to_string())?;
        for (name, color, values) in lines {
            let c = *color;
            chart
                .draw_series(LineSeries::new(
                    values.iter().enumerate().map(|(i, v)| (i, *v)),
                    c.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(RGBColor(0xcc, 0xcc, 0xcc))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
        Ok(())
    })();
    match result {
        Ok(()) => buf,
        Err(e) => {
            tracing::warn!(error = %e, "A chart could not be drawn.");
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use rampart_proxy::stats::{LiveStats, Window};

    use super::*;

    #[test]
    fn charts_are_svg_without_inline_style() {
        let s = LiveStats::new(0);
        let series = s.series(Window::Hour, 3_600_000);
        for svg in [traffic_svg(&series), latency_svg(&series)] {
            assert!(svg.starts_with("<svg"), "{svg}");
            assert!(svg.contains("<polyline") || svg.contains("<path"));
            assert!(svg.contains("requests") || svg.contains("p50"));
            // The CSP forbids inline style attributes: the SVG must not rely on them.
            assert!(!svg.contains("style="), "inline style in the chart");
        }
    }
}
