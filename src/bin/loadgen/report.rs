//! The results as a Markdown table and an SVG chart.

use super::Step;

/// One row per step: throughput, latency, errors, memory and busy cores.
pub fn markdown(label: &str, steps: &[Step]) -> String {
    let mut text = format!(
        "{label}\n\n| connections | orders/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | server peak RSS | machine busy |\n|---|---|---|---|---|---|---|---|---|\n"
    );
    for s in steps {
        text.push_str(&format!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} MB | {} |\n",
            s.connections,
            s.orders_per_second,
            s.p50_ms,
            s.p99_ms,
            s.p999_ms,
            s.max_ms,
            s.errors,
            s.server_peak_rss_kb.map_or(0, |kb| kb / 1024),
            s.machine_busy_cores
                .map_or("?".to_owned(), |cores| format!("{cores:.2} cores"))
        ));
    }
    text
}

/// Throughput (left axis) and p99 latency (right axis) against concurrency.
pub fn chart(path: &std::path::Path, title: &str, steps: &[Step]) -> anyhow::Result<()> {
    use plotters::prelude::*;

    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let positions = 0..steps.len() as i32;
    let max_rate = steps
        .iter()
        .map(|s| s.orders_per_second)
        .fold(1.0, f64::max)
        * 1.15;
    let max_p99 = steps.iter().map(|s| s.p99_ms).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .right_y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..(steps.len() as f64 - 0.5), 0.0..max_rate)?
        .set_secondary_coord(-0.5f64..(steps.len() as f64 - 0.5), 0.0..max_p99);
    chart
        .configure_mesh()
        .x_labels(steps.len())
        .x_label_formatter(&|x| {
            let index = x.round() as usize;
            steps
                .get(index)
                .map_or_else(String::new, |s| s.connections.to_string())
        })
        .x_desc("connections")
        .y_desc("orders/s")
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("p99 latency (ms)")
        .draw()?;
    let rate: Vec<(f64, f64)> = positions
        .clone()
        .zip(steps)
        .map(|(i, s)| (f64::from(i), s.orders_per_second))
        .collect();
    let p99: Vec<(f64, f64)> = positions
        .zip(steps)
        .map(|(i, s)| (f64::from(i), s.p99_ms))
        .collect();
    chart
        .draw_series(LineSeries::new(rate.clone(), BLUE.stroke_width(2)))?
        .label("orders/s")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart.draw_series(
        rate.iter()
            .map(|&point| Circle::new(point, 4, BLUE.filled())),
    )?;
    chart
        .draw_secondary_series(LineSeries::new(p99.clone(), RED.stroke_width(2)))?
        .label("p99 ms")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart.draw_secondary_series(p99.iter().map(|&point| Circle::new(point, 4, RED.filled())))?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
