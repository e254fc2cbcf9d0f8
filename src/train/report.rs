//! `report.md` and its charts (PNG) for a finished run.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use serde_json::Value;

/// Fonts for chart text, from the system (Debian's fonts-dejavu-core).
const FONT_CANDIDATES: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Registers the first system font found; charts without one have no text.
fn fonts_available() -> bool {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        for path in FONT_CANDIDATES {
            if let Ok(bytes) = std::fs::read(path) {
                let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, leaked).is_ok() {
                    set_found();
                    break;
                }
            }
        }
    });
    found()
}

static FONT_FOUND: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn set_found() {
    FONT_FOUND.store(true, std::sync::atomic::Ordering::Release);
}

fn found() -> bool {
    FONT_FOUND.load(std::sync::atomic::Ordering::Acquire)
}

fn series(rows: &[Value], stage: &str, key: &str) -> Vec<(f64, f64)> {
    rows.iter()
        .filter(|r| r["stage"] == stage)
        .filter_map(|r| Some((r["step"].as_f64()?, r[key].as_f64()?)))
        .collect()
}

/// One line chart; returns whether it was drawn.
fn line_chart(
    path: &Path,
    title: &str,
    y_label: &str,
    points: &[(f64, f64)],
) -> anyhow::Result<bool> {
    if points.len() < 2 {
        return Ok(false);
    }
    let text = fonts_available();
    let root = BitMapBackend::new(path, (720, 360)).into_drawing_area();
    root.fill(&WHITE)?;
    let (x0, x1) = (
        points[0].0,
        points[points.len() - 1].0.max(points[0].0 + 1.0),
    );
    let (mut y0, mut y1) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (_, y)| {
            (a.min(*y), b.max(*y))
        });
    if (y1 - y0).abs() < 1e-9 {
        y0 -= 0.5;
        y1 += 0.5;
    }
    let pad = (y1 - y0) * 0.05;
    let mut builder = ChartBuilder::on(&root);
    builder
        .margin(12)
        .x_label_area_size(if text { 36 } else { 8 })
        .y_label_area_size(if text { 60 } else { 8 });
    if text {
        builder.caption(title, ("sans-serif", 20));
    }
    let mut chart = builder.build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("step").y_desc(y_label);
    } else {
        mesh.disable_x_axis().disable_y_axis();
    }
    mesh.draw()?;
    chart.draw_series(LineSeries::new(points.iter().copied(), &BLUE))?;
    root.present()?;
    Ok(true)
}

fn stage_chart(path: &Path, evals: &[(String, f64)]) -> anyhow::Result<bool> {
    if evals.is_empty() {
        return Ok(false);
    }
    let text = fonts_available();
    let root = BitMapBackend::new(path, (520, 360)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .margin(12)
        .x_label_area_size(if text { 36 } else { 8 })
        .y_label_area_size(if text { 50 } else { 8 });
    if text {
        builder.caption("held-out accuracy per stage", ("sans-serif", 20));
    }
    let mut chart = builder.build_cartesian_2d((0..evals.len()).into_segmented(), 0.0..1.0f64)?;
    let names: Vec<String> = evals.iter().map(|(n, _)| n.clone()).collect();
    let label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_label_formatter(&label).y_desc("accuracy");
    } else {
        mesh.disable_x_axis().disable_y_axis();
    }
    mesh.draw()?;
    chart.draw_series(
        Histogram::vertical(&chart)
            .style(BLUE.filled())
            .margin(20)
            .data(evals.iter().enumerate().map(|(i, (_, a))| (i, *a))),
    )?;
    root.present()?;
    Ok(true)
}

/// Writes `report.md` and the charts into `out`.
pub fn write(out: &Path, rows: &[Value], seconds: f64, config_text: &str) -> anyhow::Result<()> {
    let charts = [
        ("sft_loss.png", "SFT loss", "loss", "sft", "loss"),
        (
            "reward.png",
            "GRPO mean reward",
            "reward",
            "grpo",
            "reward_mean",
        ),
        (
            "accuracy.png",
            "GRPO sampling accuracy",
            "accuracy",
            "grpo",
            "accuracy",
        ),
        (
            "response_length.png",
            "response length",
            "tokens",
            "grpo",
            "response_tokens",
        ),
        ("kl.png", "KL to the reference", "KL", "grpo", "kl"),
        ("entropy.png", "policy entropy", "nats", "grpo", "entropy"),
        (
            "clip_fraction.png",
            "clipped ratio share",
            "fraction",
            "grpo",
            "clip_fraction",
        ),
    ];
    let mut md = String::from("# r1 train report\n\n");
    let evals: Vec<(String, f64, f64, f64, usize)> = rows
        .iter()
        .filter(|r| r["stage"] == "eval")
        .map(|r| {
            (
                r["model"].as_str().unwrap_or("?").to_owned(),
                r["accuracy"].as_f64().unwrap_or(0.0),
                r["format_rate"].as_f64().unwrap_or(0.0),
                r["mean_response_tokens"].as_f64().unwrap_or(0.0),
                r["n"].as_u64().unwrap_or(0) as usize,
            )
        })
        .collect();
    md.push_str(&format!(
        "Run time: {seconds:.0} s.\n\n## Held-out evaluation\n\n"
    ));
    md.push_str("| model | accuracy | format | tokens per answer | problems |\n| --- | --- | --- | --- | --- |\n");
    for (model, acc, fmt, tok, n) in &evals {
        md.push_str(&format!(
            "| {model} | {:.1}% | {:.1}% | {tok:.1} | {n} |\n",
            acc * 100.0,
            fmt * 100.0
        ));
    }
    if stage_chart(
        &out.join("stages.png"),
        &evals.iter().map(|e| (e.0.clone(), e.1)).collect::<Vec<_>>(),
    )? {
        md.push_str("\n![accuracy per stage](stages.png)\n");
    }
    md.push_str("\n## Training curves\n\n");
    for (file, title, y, stage, key) in charts {
        if line_chart(&out.join(file), title, y, &series(rows, stage, key))? {
            md.push_str(&format!("### {title}\n\n![{title}]({file})\n\n"));
        }
    }
    md.push_str("## Configuration\n\n```toml\n");
    md.push_str(config_text);
    md.push_str("\n```\n");
    std::fs::write(out.join("report.md"), md)?;
    Ok(())
}
