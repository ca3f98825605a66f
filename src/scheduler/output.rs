//! Terminal output: a redrawn block of live progress on a terminal, plain event lines otherwise.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Where the scheduler's progress goes.
pub(super) struct Output {
    sink: Option<Box<dyn Write + Send>>,
    interactive: bool,
    /// Lines of the progress block now on the screen.
    drawn: usize,
    started: Instant,
}

impl Output {
    /// Output into `sink`; `None` for silence.
    pub(super) fn new(sink: Option<Box<dyn Write + Send>>) -> Output {
        Output {
            interactive: sink.is_some() && std::io::stdout().is_terminal(),
            sink,
            drawn: 0,
            started: Instant::now(),
        }
    }

    /// A line of its own (the progress block is redrawn later).
    pub(super) fn line(&mut self, text: &str) {
        self.clear_progress();
        if let Some(sink) = &mut self.sink {
            let _ = writeln!(sink, "{text}");
            let _ = sink.flush();
        }
    }

    /// An event line, stamped with the time since the scheduler started.
    pub(super) fn event(&mut self, text: &str) {
        let elapsed = self.started.elapsed();
        self.line(&format!("[{}] {text}", clock(elapsed)));
    }

    /// Removes the progress block from the screen.
    pub(super) fn clear_progress(&mut self) {
        if self.drawn > 0
            && let Some(sink) = &mut self.sink
        {
            let _ = write!(sink, "\x1b[{}A\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }

    /// Redraws the progress block (on a terminal only).
    pub(super) fn progress(&mut self, lines: &[String]) {
        if !self.interactive {
            return;
        }
        self.clear_progress();
        if let Some(sink) = &mut self.sink {
            for line in lines {
                let _ = writeln!(sink, "{line}");
            }
            let _ = sink.flush();
        }
        self.drawn = lines.len();
    }
}

/// `HH:MM:SS`.
pub(super) fn clock(elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// ` on GPU [..]`, or nothing without GPUs.
pub(super) fn gpu_note(gpus: &[u32]) -> String {
    if gpus.is_empty() {
        String::new()
    } else {
        format!(" on GPU {gpus:?}")
    }
}
