//! The web console (`/ui/`) in a real browser: Debian's Chromium driven over WebDriver
//! (chromedriver) by fantoccini, against a real 3-bureau testnet. Through the console alone:
//! the origin enrols a resident, the destination issues a permit, the origin deregisters from
//! its inbox, the destination registers (waiting for finality), and the progress page turns
//! final. Also: a bad ID number shows its precise fault as it is typed, and the same message on
//! submit; refusals show the rulebook's rule; writes without a session or without the CSRF token
//! are refused; every page has a Content-Security-Policy. Screenshots go to `docs/screenshots/`.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`./test.sh` installs them). Without
//! them the test fails under `CI=true` and skips, loudly, otherwise.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hukou_tests::{Testnet, citizen_id, free_ports, try_get, wait_until};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ORIGIN: usize = 0; // 310104 上海市公安局徐汇分局
const DESTINATION: usize = 1; // 330502
const WAIT: Duration = Duration::from_secs(30);

/// Whether the browser is installed; under CI its absence is a failure.
fn browser_installed() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "the web console's browser test needs {} (Debian packages chromium and chromium-driver; \
         ./test.sh installs them with apt-get)",
        missing.join(" and ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("\n!!!!!!!!!! SKIPPED: {message} !!!!!!!!!!\n");
    false
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let port = free_ports(1)[0];
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        assert!(
            wait_until(Duration::from_secs(20), || try_get(&format!(
                "{url}/status"
            ))
            .is_ok()),
            "chromedriver did not answer on {url}"
        );
        Driver { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1100",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session in Chromium")
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&dir).expect("docs/screenshots");
    dir
}

/// Saves a full-window PNG of the current page as `docs/screenshots/NAME.png`.
async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).expect("write screenshot");
}

async fn find(c: &Client, css: &str) -> Element {
    match c.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
        Ok(e) => e,
        Err(e) => {
            let url = c.current_url().await.map(|u| u.to_string());
            let page = c.source().await.unwrap_or_default();
            panic!("no element {css} on {url:?}: {e}\n{page}")
        }
    }
}

async fn text(c: &Client, css: &str) -> String {
    find(c, css).await.text().await.expect("text")
}

async fn fill(c: &Client, css: &str, value: &str) {
    let e = find(c, css).await;
    e.clear().await.expect("clear");
    e.send_keys(value).await.expect("type");
}

async fn click(c: &Client, css: &str) {
    find(c, css).await.click().await.expect("click");
}

/// Reloads `url` until `css` matches, up to [`WAIT`].
async fn reload_until(c: &Client, url: &str, css: &str) -> Element {
    let started = Instant::now();
    loop {
        c.goto(url).await.expect("goto");
        if let Ok(e) = c.find(Locator::Css(css)).await {
            return e;
        }
        assert!(
            started.elapsed() < WAIT,
            "{css} did not appear on {url} within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn sign_in(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/ui/login")).await.expect("goto");
    fill(c, "#token", token).await;
    click(c, "#sign-in-submit").await;
    find(c, "#inbox").await;
    assert!(
        !c.current_url().await.expect("url").as_str().contains(token),
        "the token must never be in a URL"
    );
}

/// The outcome of a form: whether it was written, and the page's rule name or written ref.
async fn outcome(c: &Client) -> (bool, String) {
    let o = find(c, "#outcome").await;
    let ok = o.attr("data-ok").await.expect("attr").as_deref() == Some("true");
    let detail = if ok {
        text(c, "#written-ref").await
    } else {
        text(c, "code.rule").await
    };
    (ok, detail)
}

/// An HTTP agent that does not follow redirects and does not treat 4xx as an error.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

fn post_form(url: &str, cookie: Option<&str>, body: &str) -> (u16, String) {
    let mut req = agent()
        .post(url)
        .content_type("application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    let mut resp = req.send(body).expect("POST answers");
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

#[test]
fn console_transfer_in_a_real_browser() {
    if !browser_installed() {
        return;
    }
    let net = Testnet::new(3);
    assert_eq!(
        [net.code(ORIGIN), net.code(DESTINATION)],
        ["310104", "330502"]
    );
    let driver = Driver::start();
    let profile = tempfile::tempdir().expect("profile dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let c = browser(&driver, profile.path()).await;
        let result = scenario(&net, &c).await;
        let _ = c.close().await;
        result
    });
}

async fn scenario(net: &Testnet, c: &Client) {
    let origin = net.api(ORIGIN).to_string();
    let dest = net.api(DESTINATION).to_string();
    let person = citizen_id(8);

    // Public start page, in Chinese by default.
    c.goto(&format!("{dest}/ui/")).await.expect("goto");
    assert_eq!(text(c, "h1").await, "办理进度查询");
    shot(c, "01-start").await;

    // A write without signing in is refused, and the window asks to sign in.
    let (status, _) = post_form(
        &format!("{dest}/ui/window/enrol"),
        None,
        &format!("person={person}&csrf=x"),
    );
    assert_eq!(status, 401, "a write without a session must be refused");
    let resp = agent()
        .get(&format!("{dest}/ui/window"))
        .call()
        .expect("GET");
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/ui/login");

    // The origin (Xuhui) enrols the resident through its console.
    sign_in(c, &origin, net.token(ORIGIN)).await;
    shot(c, "02-sign-in-window").await;
    fill(c, "#enrol-person", &person).await;
    click(c, "#enrol").await;
    let (ok, enrolled) = outcome(c).await;
    assert!(ok, "enrolment refused: {enrolled}");

    // A bad ID number: its precise fault as it is typed, and the same message on submit.
    c.goto(&format!("{origin}/ui/window")).await.expect("goto");
    let mut bad = person.clone();
    let last = bad.pop().expect("18 characters");
    bad.push(if last == '0' { '1' } else { '0' });
    fill(c, "#enrol-person", &bad).await;
    let started = Instant::now();
    let hint = loop {
        let t = text(c, "#enrol-person-fault").await;
        if t.contains("id_wrong_check_character") {
            break t;
        }
        assert!(started.elapsed() < WAIT, "no ID fault shown, got {t:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(hint.contains(&format!("expected '{last}'")), "{hint}");
    shot(c, "03-id-fault-as-typed").await;
    click(c, "#enrol").await;
    let (ok, rule) = outcome(c).await;
    assert!(!ok);
    assert_eq!(rule, "id_wrong_check_character");
    let message = text(c, ".error .message").await;
    assert_eq!(
        hint,
        format!("id_wrong_check_character: {message}"),
        "the live hint and the server's refusal must say the same"
    );

    // The destination (Huzhou) issues a permit to move in (准迁证).
    sign_in(c, &dest, net.token(DESTINATION)).await;
    fill(c, "#permit-person", &person).await;
    find(c, "#permit-origin")
        .await
        .select_by_value("310104")
        .await
        .expect("select origin");
    find(c, "#permit-category")
        .await
        .select_by_value("spouse")
        .await
        .expect("select category");
    shot(c, "04-destination-issue-permit").await;
    click(c, "#issue-permit").await;
    let (ok, permit) = outcome(c).await;
    assert!(ok, "permit refused: {permit}");
    assert!(permit.starts_with("330502:"), "{permit}");
    shot(c, "05-permit-issued").await;

    // The origin deregisters (迁出) from its inbox.
    let row = format!("tr[data-permit='{permit}']");
    reload_until(c, &format!("{origin}/ui/window"), &row).await;
    shot(c, "06-origin-inbox").await;
    click(c, &format!("{row} button.deregister")).await;
    let (ok, deregistration) = outcome(c).await;
    assert!(ok, "deregistration refused: {deregistration}");
    assert!(deregistration.starts_with("310104:"), "{deregistration}");

    // The destination registers (落户), waiting for the deregistration to be final.
    let row = format!("tr[data-deregistration='{deregistration}']");
    reload_until(c, &format!("{dest}/ui/window"), &row).await;
    shot(c, "07-destination-inbox").await;
    let wait_box = find(c, &format!("{row} input[name='wait']")).await;
    assert_eq!(
        wait_box.prop("checked").await.expect("prop").as_deref(),
        Some("true"),
        "the register form offers to wait for finality"
    );
    click(c, &format!("{row} button.register")).await;
    let (ok, registration) = outcome(c).await;
    assert!(ok, "registration refused: {registration}");
    assert!(registration.starts_with("330502:"), "{registration}");
    shot(c, "08-registered").await;

    // The progress page (public, no sign-in) turns final.
    click(c, "#progress-link").await;
    let progress = c.current_url().await.expect("url").to_string();
    assert!(progress.contains("/ui/transfer/"), "{progress}");
    let started = Instant::now();
    loop {
        let f = find(c, "#finality").await;
        if f.attr("data-final").await.expect("attr").as_deref() == Some("true") {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the transfer did not become final"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.goto(&progress).await.expect("goto");
    }
    assert_eq!(
        find(c, "#status")
            .await
            .attr("data-status")
            .await
            .expect("attr")
            .as_deref(),
        Some("registered")
    );
    let steps: Vec<String> = {
        let mut v = Vec::new();
        for e in c
            .find_all(Locator::Css("tr[data-step]"))
            .await
            .expect("steps")
        {
            v.push(e.attr("data-step").await.expect("attr").unwrap_or_default());
        }
        v
    };
    assert_eq!(steps, ["permit", "deregistration", "registration"]);
    let source = c.source().await.expect("source");
    assert!(source.contains("上海市公安局徐汇分局"), "bureaus by name");
    assert!(
        !source.contains(&person),
        "no ID number on the progress page"
    );
    shot(c, "09-progress-final").await;

    // A refusal shows the rulebook's rule: the person is already registered here now, so their
    // arbiter refuses a second claim on them (the rulebook judges the claim before admission's
    // `person_already_registered`), naming the claim their enrolment consumed.
    c.goto(&format!("{dest}/ui/window")).await.expect("goto");
    fill(c, "#enrol-person", &person).await;
    click(c, "#enrol").await;
    let (ok, rule) = outcome(c).await;
    assert!(!ok);
    assert_eq!(rule, "person_claimed");
    let message = text(c, ".error .message").await;
    let arbiter = net.arbiter_of(&person);
    assert!(
        message.contains(&format!("already claimed by {arbiter}:")),
        "{message}"
    );
    shot(c, "10-refusal-rule").await;

    // Person look-up by ID number (POST): registered at the destination now.
    c.goto(&format!("{dest}/ui/window")).await.expect("goto");
    fill(c, "#lookup-person", &person).await;
    click(c, "#form-person button").await;
    assert!(text(c, "#registered-at").await.contains("330502"));
    assert!(
        !c.current_url()
            .await
            .expect("url")
            .as_str()
            .contains(&person)
    );

    // The network page: three members, two peers connected.
    c.goto(&format!("{dest}/ui/network")).await.expect("goto");
    assert_eq!(
        c.find_all(Locator::Css("#members tbody tr"))
            .await
            .expect("rows")
            .len(),
        3
    );
    let started = Instant::now();
    while text(c, "#connected-count").await != "2 / 2" {
        assert!(started.elapsed() < WAIT, "peers not shown as connected");
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.refresh().await.expect("refresh");
    }
    assert!(
        c.find(Locator::Css("#fraud-banner")).await.is_err(),
        "no fraud, no banner"
    );
    // The configuration in force: the genesis epoch, its three members with their key
    // fingerprints, and a history of one epoch, the genesis.
    assert!(
        text(c, "#config-epoch").await.starts_with("第0版网络配置"),
        "{}",
        text(c, "#config-epoch").await
    );
    assert_eq!(
        c.find_all(Locator::Css("#config-members tbody tr"))
            .await
            .expect("rows")
            .len(),
        3
    );
    let (_, config) = net.get(DESTINATION, "/v1/config");
    let fingerprint = config["members"][0]["key_fingerprint"]
        .as_str()
        .expect("a fingerprint")
        .to_string();
    assert!(text(c, "#config-members").await.contains(&fingerprint));
    assert!(
        text(c, "#config-history")
            .await
            .contains("创世（网络成立）")
    );
    shot(c, "11-network").await;

    // The reconciliation: one registration in today, a table, a CSV and a chart.
    c.goto(&format!("{dest}/ui/reconciliation"))
        .await
        .expect("goto");
    assert_eq!(
        text(c, "tr[data-column='registrations_in'] td.num").await,
        "1"
    );
    assert_eq!(
        text(c, "tr[data-column='permits_issued'] td.num").await,
        "1"
    );
    find(c, "svg#chart").await;
    shot(c, "12-reconciliation").await;
    let mut resp = agent()
        .get(&format!("{dest}/ui/reconciliation.csv"))
        .call()
        .expect("CSV");
    assert_eq!(resp.status().as_u16(), 200);
    let csv = resp.body_mut().read_to_string().expect("CSV text");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let row: Vec<&str> = lines.next().expect("today's row").split(',').collect();
    let col = |name: &str| row[header.iter().position(|h| *h == name).expect(name)];
    assert_eq!(col("bureau"), "330502");
    assert_eq!(col("registrations_in"), "1");

    // English with one click, kept for the next page.
    c.goto(&progress).await.expect("goto");
    click(c, "#lang-toggle").await;
    assert_eq!(text(c, "h1").await, "Transfer progress");
    c.goto(&format!("{dest}/ui/network")).await.expect("goto");
    assert_eq!(text(c, "h1").await, "Network");
    shot(c, "13-network-english").await;
    click(c, "#lang-toggle").await;

    // A POST with the session but without (or with a wrong) CSRF token is refused.
    let cookie_name = "hukou_session_330502";
    let session = c
        .get_named_cookie(cookie_name)
        .await
        .expect("the session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Strict)");
    let cookie = format!("{cookie_name}={}", session.value());
    let another = citizen_id(9);
    let (status, body) = post_form(
        &format!("{dest}/ui/window/enrol"),
        Some(&cookie),
        &format!("person={another}"),
    );
    assert_eq!(status, 403, "no CSRF token: {body}");
    assert!(body.contains("csrf_token_invalid"));
    let (status, _) = post_form(
        &format!("{dest}/ui/window/enrol"),
        Some(&cookie),
        &format!("person={another}&csrf=0000"),
    );
    assert_eq!(status, 403, "a wrong CSRF token");
    let (status, person_now) = net.post(DESTINATION, "/v1/person", &json!({"person": another}));
    assert_eq!(status, 200);
    assert!(
        person_now["history"].as_array().is_some_and(Vec::is_empty),
        "nothing was written"
    );

    // Every console page carries a Content-Security-Policy without inline scripts.
    for path in [
        "/ui/",
        "/ui/login",
        "/ui/network",
        &format!("/ui/transfer/{permit}"),
    ] {
        let resp = agent().get(&format!("{dest}{path}")).call().expect("GET");
        let csp = resp
            .headers()
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("no CSP on {path}"))
            .to_str()
            .expect("ascii");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
    }

    // Signing out ends the session server-side.
    c.goto(&format!("{dest}/ui/window")).await.expect("goto");
    click(c, "#sign-out").await;
    find(c, "#sign-in").await;
    let (status, _) = post_form(
        &format!("{dest}/ui/window/enrol"),
        Some(&cookie),
        &format!("person={another}&csrf=x"),
    );
    assert_eq!(status, 401, "the old session id is dead");
}
