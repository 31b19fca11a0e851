//! Topic names of the contract, relative to `mqtt.topic_prefix` (P).

/// All topics of one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub luminosity: String,
    pub light: String,
    pub mode: String,
    pub status: String,
    pub state: String,
    pub health: String,
    pub alert: String,
    pub light_set: String,
    pub light_set_error: String,
    pub mock_set: String,
    /// Daily light integral: the day so far, the closed day's report, the live target command and its errors.
    pub dli: String,
    pub report_daily: String,
    pub dli_target_set: String,
    pub dli_target_set_error: String,
}

impl Topics {
    pub fn new(prefix: &str) -> Self {
        let t = |s: &str| format!("{prefix}/{s}");
        Topics {
            luminosity: t("luminosity"),
            light: t("light"),
            mode: t("mode"),
            status: t("status"),
            state: t("state"),
            health: t("health"),
            alert: t("alert"),
            light_set: t("light/set"),
            light_set_error: t("light/set/error"),
            mock_set: t("mock/set"),
            dli: t("dli"),
            report_daily: t("report/daily"),
            dli_target_set: t("dli/target/set"),
            dli_target_set_error: t("dli/target/set/error"),
        }
    }
}
