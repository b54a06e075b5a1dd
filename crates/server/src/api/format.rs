//! Wire formats shared by the platform and bk-sops dialects.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// `2018-08-06 14:27:48` in the server's time zone, as the seeds show dates.
pub(crate) fn platform_date(ms: i64) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.to_zoned(TimeZone::system()).strftime("%Y-%m-%d %H:%M:%S").to_string(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn platform_dates_have_the_seed_shape() {
        let text = super::platform_date(1_533_536_868_000);
        assert_eq!(text.len(), 19);
        assert_eq!(&text[4..5], "-");
        assert_eq!(&text[10..11], " ");
    }
}
