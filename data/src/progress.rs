//! Progress of long work: a bar on a terminal; in logs (CI, redirected
//! output), where indicatif draws nothing, a line every tenth of the work.

use std::time::Instant;

use ernie_search::index::builder::Progress;
use indicatif::{ProgressBar, ProgressStyle};

/// A labelled bar that also logs when no terminal shows it.
pub struct Bar {
    bar: ProgressBar,
    label: String,
    start: Instant,
    next_report: usize,
    /// The last call's (done, total): a call that goes back or changes the
    /// total starts another phase of work on the same bar.
    last: (usize, usize),
}

impl Bar {
    pub fn new(len: u64, label: &str) -> Self {
        Self { bar: bar(len, label), label: label.to_string(), start: Instant::now(), next_report: 0, last: (0, 0) }
    }

    pub fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

impl Progress for Bar {
    fn advance(&mut self, done: usize, total: usize) {
        if total != self.last.1 || done < self.last.0 {
            (self.next_report, self.start) = (0, Instant::now());
        }
        self.last = (done, total);
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
        if self.bar.is_hidden() && done >= self.next_report && done < total {
            if self.next_report > 0 {
                eprintln!("{}: {done}/{total} in {:.0}s", self.label, self.seconds());
            }
            self.next_report = done + total.div_ceil(10);
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// An indicatif bar with this project's style.
pub fn bar(len: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar
}
