//! An SVG per stage: the loss terms over steps (from metrics.jsonl) and the
//! dev metrics measured at the end of the stage, so a run is looked at
//! rather than read.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

/// Plots every numeric series of `metrics.jsonl` whose name is a loss term.
pub fn plot_stage(stage_dir: &Path, title: &str, dev: Option<&ernie_search::metrics::Scores>) -> Result<()> {
    let text = std::fs::read_to_string(stage_dir.join("metrics.jsonl")).context("metrics.jsonl")?;
    let rows: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let names = ["loss", "l_de", "l_li", "kl_li_de", "kl_ce_li", "kl_ce_de", "l_id", "l_ce"];
    let series: Vec<(&str, Vec<(f64, f64)>)> = names
        .iter()
        .map(|n| (*n, rows.iter().filter_map(|r| Some((r["step"].as_f64()?, r[*n].as_f64()?))).collect::<Vec<_>>()))
        .filter(|(_, s)| !s.is_empty())
        .collect();
    let max_step = rows.iter().filter_map(|r| r["step"].as_f64()).fold(1.0, f64::max);
    let max_y = series.iter().flat_map(|(_, s)| s.iter().map(|p| p.1)).filter(|v| v.is_finite()).fold(1e-3, f64::max);
    let path = stage_dir.join("loss.svg");
    let root = SVGBackend::new(&path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = match dev {
        Some(s) => format!("{title} - dev MRR@10 {:.3}, R@20 {:.3}, nDCG@10 {:.3}", s.mrr_10, s.recall_20, s.ndcg_10),
        None => title.to_string(),
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..max_step, 0f64..max_y * 1.05)?;
    chart.configure_mesh().x_desc("step").y_desc("loss term").draw()?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}
