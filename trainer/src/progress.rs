//! Progress over epochs: an indicatif bar with ETA on a terminal, plain lines otherwise (logs, CI).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Epoch progress; silent when disabled.
#[derive(Debug)]
pub struct EpochBar {
    bar: Option<ProgressBar>,
    name: String,
}

/// A bar over `epochs` epochs for run `name` (no output at all when `enabled` is false).
pub fn epoch_bar(enabled: bool, epochs: usize, name: &str) -> EpochBar {
    let bar = enabled.then(|| {
        let b = ProgressBar::with_draw_target(Some(epochs as u64), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] epoch {pos}/{len} {msg} (elapsed {elapsed}, ETA {eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        b.set_prefix(name.to_owned());
        b
    });
    EpochBar { bar, name: name.to_owned() }
}

impl EpochBar {
    /// Shows a step's state on the bar (terminal only).
    pub fn step(&self, msg: String) {
        if let Some(b) = &self.bar {
            b.set_message(msg);
        }
    }

    /// Counts epochs already done (a resumed run).
    pub fn skip(&self, epochs: usize) {
        if let Some(b) = &self.bar {
            b.set_position(epochs as u64);
            b.reset_eta();
        }
    }

    /// Prints an epoch's line above the bar (or alone, off a terminal) and advances it.
    pub fn epoch_done(&self, line: String) {
        let Some(b) = &self.bar else { return };
        if b.is_hidden() {
            eprintln!("{} {line}", self.name);
        } else {
            b.println(format!("{} {line}", self.name));
        }
        b.inc(1);
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
