//! The HTML pages of the browser and device logins, shaped like Keycloak's login theme
//! (`themes/src/main/resources/theme/base/login/`: `login.ftl`, `error.ftl`, `info.ftl`,
//! `login-oauth-grant.ftl`, `login-oauth2-device-verify-user-code.ftl`). The form ids,
//! field names, button names and values and the texts are Keycloak's, so a script (or a
//! person) finds what it would find there; the styling is left out.

use crate::idp::Page;

/// Escapes text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn layout(realm: &str, title: &str, body: &str) -> String {
    let realm = escape(realm);
    let title = escape(title);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n<title>{title}</title>\n</head>\n\
         <body class=\"login-pf-page\">\n<div id=\"kc-header\"><div id=\"kc-header-wrapper\">{realm}</div></div>\n\
         <div class=\"card-pf\" id=\"kc-content\">\n{body}</div>\n</body>\n</html>\n"
    )
}

fn alert(error: Option<&str>) -> String {
    error.map_or_else(String::new, |e| {
        format!(
            "<div class=\"alert-error\"><span class=\"kc-feedback-text\">{}</span></div>\n",
            escape(e)
        )
    })
}

/// The page as HTML.
pub fn render(page: &Page, realm: &str) -> String {
    match page {
        Page::Error(message) => layout(
            realm,
            "We are sorry...",
            &format!(
                "<h1 id=\"kc-page-title\">We are sorry...</h1>\n\
                 <div id=\"kc-error-message\"><p class=\"instruction\">{}</p></div>\n",
                escape(message)
            ),
        ),
        Page::Info { header, message } => layout(
            realm,
            header,
            &format!(
                "<h1 id=\"kc-page-title\">{}</h1>\n\
                 <div id=\"kc-info-message\"><p class=\"instruction\">{}</p></div>\n",
                escape(header),
                escape(message)
            ),
        ),
        Page::Login {
            action,
            username,
            error,
            ..
        } => {
            let invalid = if error.is_some() { "true" } else { "false" };
            let field_error = error.map_or_else(String::new, |e| {
                format!(
                    "<span id=\"input-error\" class=\"kc-feedback-text\" aria-live=\"polite\">{}</span>\n",
                    escape(e)
                )
            });
            layout(
                realm,
                &format!("Sign in to {realm}"),
                &format!(
                    "<h1 id=\"kc-page-title\">Sign in to your account</h1>\n\
                     <div id=\"kc-form\"><div id=\"kc-form-wrapper\">\n\
                     <form id=\"kc-form-login\" onsubmit=\"login.disabled = true; return true;\" action=\"{action}\" method=\"post\">\n\
                     <div class=\"form-group\"><label for=\"username\">Username or email</label>\n\
                     <input tabindex=\"1\" id=\"username\" name=\"username\" value=\"{username}\" type=\"text\" autofocus autocomplete=\"off\" aria-invalid=\"{invalid}\"/>\n\
                     {field_error}</div>\n\
                     <div class=\"form-group\"><label for=\"password\">Password</label>\n\
                     <input tabindex=\"2\" id=\"password\" name=\"password\" type=\"password\" autocomplete=\"off\" aria-invalid=\"{invalid}\"/>\n</div>\n\
                     <div id=\"kc-form-buttons\" class=\"form-group\">\n\
                     <input type=\"hidden\" id=\"id-hidden-input\" name=\"credentialId\"/>\n\
                     <input tabindex=\"4\" name=\"login\" id=\"kc-login\" type=\"submit\" value=\"Sign In\"/>\n\
                     <input tabindex=\"5\" name=\"cancel\" id=\"kc-cancel\" type=\"submit\" value=\"Cancel\"/>\n\
                     </div>\n</form>\n</div></div>\n",
                    action = escape(action),
                    username = escape(username),
                ),
            )
        }
        Page::UserCode { action, error } => layout(
            realm,
            "Device Login",
            &format!(
                "<h1 id=\"kc-page-title\">Device Login</h1>\n{alert}\
                 <form id=\"kc-user-verify-device-user-code-form\" class=\"form-horizontal\" action=\"{action}\" method=\"post\">\n\
                 <div class=\"form-group\"><label for=\"device-user-code\" class=\"control-label\">Enter the code provided by your device and click Submit</label>\n\
                 <input id=\"device-user-code\" name=\"device_user_code\" autocomplete=\"off\" type=\"text\" class=\"form-control\" autofocus/>\n</div>\n\
                 <div id=\"kc-form-buttons\" class=\"form-group\">\n\
                 <input class=\"btn btn-primary\" type=\"submit\" value=\"Submit\"/>\n\
                 </div>\n</form>\n",
                alert = alert(*error),
                action = escape(action),
            ),
        ),
        Page::Consent {
            action,
            code,
            client,
            scopes,
        } => {
            let items: String = scopes
                .iter()
                .map(|s| format!("<li><span>{}</span></li>\n", escape(s)))
                .collect();
            let title = format!("Grant Access to {client}");
            layout(
                realm,
                &title,
                &format!(
                    "<h1 id=\"kc-page-title\">{title}</h1>\n\
                     <div id=\"kc-oauth\" class=\"content-area\">\n\
                     <h3>Do you grant these access privileges?</h3>\n<ul>\n{items}</ul>\n\
                     <form class=\"form-actions\" action=\"{action}\" method=\"POST\">\n\
                     <input type=\"hidden\" name=\"code\" value=\"{code}\">\n\
                     <div id=\"kc-form-buttons\"><div class=\"btn-group\">\n\
                     <input class=\"btn btn-primary\" name=\"accept\" id=\"kc-login\" type=\"submit\" value=\"Yes\"/>\n\
                     <input class=\"btn btn-default\" name=\"cancel\" id=\"kc-cancel\" type=\"submit\" value=\"No\"/>\n\
                     </div></div>\n</form>\n</div>\n",
                    title = escape(&title),
                    action = escape(action),
                    code = escape(code),
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_page_has_keycloaks_form_and_escapes() {
        let html = render(
            &Page::Login {
                action: "http://h/realms/r/login-actions/authenticate?session_code=a&tab_id=b"
                    .into(),
                username: "<x>\"".into(),
                error: Some("Invalid username or password."),
                auth_session_id: "id".into(),
            },
            "r",
        );
        assert!(html.contains(
            "<form id=\"kc-form-login\" onsubmit=\"login.disabled = true; return true;\" action=\"http://h/realms/r/login-actions/authenticate?session_code=a&amp;tab_id=b\" method=\"post\">"
        ));
        assert!(html.contains("value=\"&lt;x&gt;&quot;\""));
        assert!(html.contains("name=\"login\" id=\"kc-login\" type=\"submit\" value=\"Sign In\""));
        assert!(html.contains("name=\"cancel\" id=\"kc-cancel\" type=\"submit\" value=\"Cancel\""));
        assert!(html.contains(">Invalid username or password.</span>"));
    }
}
