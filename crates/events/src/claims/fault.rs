//! A test-only fault switch: make the process exit abruptly right before or right after the
//! commit of a given saga step, to prove that recovery handles a crash at any instant.
//!
//! Armed only by `BESTOW_TEST_CRASH_AT=<STEP>:<before|after>` (e.g.
//! `ALLOCATE_INVENTORY:after`); a production deployment never sets it.

/// Environment variable that arms the switch.
pub const CRASH_AT_ENV: &str = "BESTOW_TEST_CRASH_AT";

/// Exit code of a deliberate crash.
pub const CRASH_EXIT_CODE: i32 = 86;

/// Where the process should crash, if anywhere.
#[derive(Debug, Clone, Default)]
pub struct FaultSwitch {
    crash_at: Option<(String, String)>,
}

impl FaultSwitch {
    /// Reads [`CRASH_AT_ENV`].
    pub fn from_env() -> Self {
        let crash_at = std::env::var(CRASH_AT_ENV).ok().and_then(|value| {
            let (step, phase) = value.split_once(':')?;
            Some((step.to_owned(), phase.to_owned()))
        });
        if let Some((step, phase)) = &crash_at {
            tracing::warn!(step, phase, "fault switch armed: the process will exit at this checkpoint");
        }
        Self { crash_at }
    }

    /// Exits the process if armed for this checkpoint.
    pub fn checkpoint(&self, step: &str, phase: &str) {
        if let Some((armed_step, armed_phase)) = &self.crash_at
            && armed_step == step
            && armed_phase == phase
        {
            eprintln!("fault switch: crashing {phase} {step}");
            std::process::exit(CRASH_EXIT_CODE);
        }
    }
}
