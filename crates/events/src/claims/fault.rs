//! A test-only fault switch: make the process exit abruptly right before or right after the
//! commit of a given saga step, to prove that recovery handles a crash at any instant.
//!
//! Armed only by `BESTOW_TEST_CRASH_AT=<STEP>:<before|after>` (e.g.
//! `ALLOCATE_INVENTORY:after`), and only in a debug build (the crash tests run the debug
//! binary): a release build compiles the switch to nothing, so no setting of a production
//! deployment can make it exit. `scripts/container-test` checks the release binary for it.

/// Exit code of a deliberate crash.
pub const CRASH_EXIT_CODE: i32 = 86;

/// Where the process should crash, if anywhere; never armed in a release build.
#[derive(Debug, Clone, Default)]
pub struct FaultSwitch {
    #[cfg(debug_assertions)]
    crash_at: Option<(String, String)>,
}

#[cfg(debug_assertions)]
impl FaultSwitch {
    /// Reads `BESTOW_TEST_CRASH_AT`.
    pub fn from_env() -> Self {
        let crash_at = std::env::var("BESTOW_TEST_CRASH_AT").ok().and_then(|value| {
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

#[cfg(not(debug_assertions))]
impl FaultSwitch {
    /// An unarmed switch: a release build reads no fault setting.
    pub fn from_env() -> Self {
        Self {}
    }

    /// Does nothing: a release build never crashes on purpose.
    #[inline(always)]
    pub fn checkpoint(&self, _step: &str, _phase: &str) {}
}
