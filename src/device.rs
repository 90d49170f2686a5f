//! Device login (OAuth 2.0 device authorization grant, RFC 8628), for SSH sessions and
//! machines without a browser: the IdP gives a user code and a verification address to open
//! on any other device; we poll the token endpoint at the interval it asks, 5 seconds slower
//! after each `slow_down`, until the user approves (tokens), denies (`access_denied`) or the
//! code expires (`expired_token`, or its `expires_in` passed).

use crate::error::{Error, Result};
use crate::idp::{DeviceAuthorization, DevicePending, IdpClient, IdpSettings, TokenSet};
use std::time::Duration;

/// Poll until the user answers, or the code expires.
pub async fn wait(
    idp: &IdpClient,
    settings: &IdpSettings,
    auth: &DeviceAuthorization,
) -> Result<TokenSet> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(auth.expires_in);
    let mut interval = Duration::from_secs(auth.interval);
    loop {
        let next = tokio::time::Instant::now() + interval;
        if next > deadline {
            return Err(Error::login_required(format!(
                "the device code expired after {} seconds without an answer; nothing was written; log in again",
                auth.expires_in
            )));
        }
        tokio::time::sleep_until(next).await;
        match idp.device_poll(settings, &auth.device_code).await? {
            Ok(tokens) => return Ok(tokens),
            Err(DevicePending::Pending) => {}
            Err(DevicePending::SlowDown) => {
                interval += Duration::from_secs(5);
                log::info!(
                    "the identity provider asked to poll more slowly: every {} s",
                    interval.as_secs()
                );
            }
        }
    }
}

/// The address as a QR code of Unicode half blocks (two rows a line), with its quiet zone,
/// for a terminal.
pub fn qr_text(url: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(url, qrcode::EcLevel::L).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

/// The address as an SVG QR code, for the login window.
pub fn qr_svg(url: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(url, qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(180, 180)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_codes_render() {
        let t = qr_text("https://sso.example.com/realms/r/device?user_code=ABCD-EFGH").unwrap();
        assert!(t.lines().count() > 10, "{t}");
        assert!(t.contains('▀') || t.contains('▄') || t.contains('█'));
        let s = qr_svg("https://sso.example.com/realms/r/device").unwrap();
        assert!(s.contains("<svg"), "{s}");
    }
}
