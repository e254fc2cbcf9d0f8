//! `metrics.jsonl`: one JSON object per training step and evaluation.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::Value;

#[derive(Debug)]
pub struct MetricsLog {
    out: BufWriter<File>,
    rows: Vec<Value>,
}

impl MetricsLog {
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let file = File::create(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(Self {
            out: BufWriter::new(file),
            rows: Vec::new(),
        })
    }

    /// Appends a row and flushes it, so the file is complete at any moment.
    pub fn write(&mut self, row: Value) -> anyhow::Result<()> {
        writeln!(self.out, "{row}")?;
        self.out.flush()?;
        self.rows.push(row);
        Ok(())
    }

    /// Every row written so far.
    pub fn rows(&self) -> &[Value] {
        &self.rows
    }
}
