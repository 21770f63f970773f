//! The dashboard in a real browser: Debian's chromium, headless, driven
//! through chromium-driver's WebDriver protocol (spoken here over a plain
//! TCP connection: a handful of JSON requests), against jobctl-web on a
//! sandbox with a dozen jobs and a few hundred runs. Screenshots of every
//! page go to target/web-screenshots/ (docs/dashboard.md shows some).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use super::*;
use crate::web::web_binary;

const FAKEJOB: &str = env!("CARGO_BIN_EXE_fakejob");

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request to `port` on loopback; the response's JSON body.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Failed> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut s =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect {port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    // chromedriver may keep the connection open: read the head, then what
    // Content-Length (or the chunks) says.
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let (head, body) = loop {
        let n = s
            .read(&mut buf)
            .map_err(|e| format!("{method} {path}: {e}"))?;
        if n == 0 {
            return Err(format!("{method} {path}: connection closed early").into());
        }
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let Some((head, rest)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let lower = head.to_ascii_lowercase();
        if let Some(len) = lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            if rest.len() >= len {
                break (head.to_string(), rest[..len].to_string());
            }
        } else if lower.contains("transfer-encoding: chunked") {
            if rest.ends_with("0\r\n\r\n") {
                break (head.to_string(), dechunk(rest));
            }
        } else {
            return Err(format!("{method} {path}: no length in {head}").into());
        }
    };
    serde_json::from_str(&body).map_err(|e| format!("{e}: {head}\n{body}").into())
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// A WebDriver session on chromedriver.
pub(crate) struct Browser {
    driver: Child,
    port: u16,
    session: String,
    profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // Whatever chromium left running (a session that could not be
        // deleted): the processes started with this test's own profile.
        let mine = format!("--user-data-dir={}", self.profile.display());
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if cmdline.split(|&b| b == 0).any(|arg| arg == mine.as_bytes())
                && let Some(pid) = rustix::process::Pid::from_raw(pid)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        let _ = fs::remove_dir_all(&self.profile);
    }
}

impl Browser {
    pub(crate) fn start(scratch: &Path) -> Result<Browser, Failed> {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            // The browser's own zone, neither UTC nor the host's: the pages'
            // times are shown in it (web_live.rs checks them).
            .env("TZ", "Asia/Tokyo")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("chromedriver (chromium-driver; scripts/setup installs it): {e}")
            })?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("chromedriver did not listen".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = scratch.join("chromium-profile");
        let _ = fs::remove_dir_all(&profile);
        let caps = serde_json::json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            profile,
        };
        let created = http(port, "POST", "/session", Some(&caps))?;
        browser.session = created["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session: {created}"))?
            .to_string();
        Ok(browser)
    }

    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failed> {
        let v = http(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        )?;
        if v["value"].get("error").is_some() {
            return Err(format!("webdriver {method} {path}: {v}").into());
        }
        Ok(v["value"].clone())
    }

    pub(crate) fn go(&self, url: &str) -> R {
        self.call("POST", "/url", Some(serde_json::json!({ "url": url })))?;
        Ok(())
    }

    pub(crate) fn find(&self, css: &str) -> Result<String, Failed> {
        let v = self.call(
            "POST",
            "/element",
            Some(serde_json::json!({ "using": "css selector", "value": css })),
        )?;
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("no element {css}").into())
    }

    pub(crate) fn count(&self, css: &str) -> Result<usize, Failed> {
        let v = self.call(
            "POST",
            "/elements",
            Some(serde_json::json!({ "using": "css selector", "value": css })),
        )?;
        Ok(v.as_array().map_or(0, Vec::len))
    }

    pub(crate) fn click(&self, css: &str) -> R {
        let e = self.find(css)?;
        self.call(
            "POST",
            &format!("/element/{e}/click"),
            Some(serde_json::json!({})),
        )?;
        Ok(())
    }

    pub(crate) fn type_into(&self, css: &str, text: &str) -> R {
        let e = self.find(css)?;
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            Some(serde_json::json!({ "text": text })),
        )?;
        Ok(())
    }

    pub(crate) fn text(&self, css: &str) -> Result<String, Failed> {
        let e = self.find(css)?;
        Ok(self
            .call("GET", &format!("/element/{e}/text"), None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    pub(crate) fn url(&self) -> Result<String, Failed> {
        Ok(self
            .call("GET", "/url", None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    pub(crate) fn resize(&self, width: u32, height: u32) -> R {
        self.call(
            "POST",
            "/window/rect",
            Some(serde_json::json!({ "width": width, "height": height })),
        )?;
        Ok(())
    }

    /// Saves a screenshot of the page as target/web-screenshots/NAME.png.
    pub(crate) fn screenshot(&self, name: &str) -> R {
        use base64::Engine as _;
        let shot = self.call("GET", "/screenshot", None)?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().unwrap_or(""))
            .map_err(|e| e.to_string())?;
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .join("web-screenshots");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("{name}.png")), png).unwrap();
        Ok(())
    }
}

/// After a click: the browser is on a page whose path starts with `path`.
fn wait_url(env: &Env, b: &Browser, path: &str) -> R {
    env.wait_for(
        &format!("the browser on {path}"),
        Duration::from_secs(30),
        || {
            let url = b.url()?;
            Ok(url
                .split_once("://")
                .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
                .is_some_and(|p| p.starts_with(path)))
        },
    )
}

pub fn a_browser_lists_jobs_follows_runs_and_runs_one_now(env: &Env) -> R {
    let dir = env.jobs_dir("web-browser");
    let teams = ["analytics", "finance", "support"];
    for i in 1..=11 {
        let schedule = if i % 3 == 0 {
            "manual = true".to_string()
        } else {
            format!("daily = \"0{}:30\"", i % 10)
        };
        write_job(
            &dir,
            &format!("report-{i:02}"),
            &format!(
                "command = [\"/bin/true\"]\n{schedule}\nteam = \"{}\"\ntags = [\"nightly\"]\nowner = \"team-{i}\"\n",
                teams[i % 3]
            ),
        );
    }
    write_job(
        &dir,
        "web-manual",
        &format!(
            "command = [{FAKEJOB:?}, \"out\", \"hello <script>alert(1)</script>\", \"err\", \"oops\"]\nmanual = true\nteam = \"support\"\n"
        ),
    );
    let config = env.scratch.join("web-browser-config.toml");
    fs::write(
        &config,
        format!("jobctl_path = \"{JOBCTL}\"\n[web]\nactions = true\n"),
    )
    .unwrap();
    ok(&env.jobctl_with(&config, &dir, &["apply"]))?;
    ok(&env.jobctl_with(&config, &dir, &["run", "web-manual", "--wait"]))?;
    // A few hundred runs, some failed, recorded by the shim itself.
    env.sh(&format!(
        "i=0; while [ $i -lt 300 ]; do i=$((i+1)); n=$(( i % 11 + 1 )); \
         {JOBCTL} exec --job report-$(printf %02d $n) -- /bin/sh -c \"echo run $i; exit $(( i % 7 == 0 ))\" >/dev/null 2>&1; done; true"
    ))?;
    let _ = fs::remove_file(env.scratch.join("web-tokens"));
    let out = env
        .sb
        .command(JOBCTL)
        .arg("--config")
        .arg(&config)
        .args([
            "token", "create", "--scope", "read,run", "--name", "browser",
        ])
        .output()
        .unwrap();
    ok(&out)?;
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();

    // The server in the sandbox's mounts and processes but on the host's
    // loopback (the sandbox's network namespace is its own), where the
    // browser is.
    let port = free_port();
    let pidfile = env.scratch.join("web-browser.pid");
    let web = web_binary()?;
    let mut server = env
        .sb
        .command("/bin/sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}; exec {} --config {} --jobs-dir {} --socket /run/jobctl/web-browser.sock --listen 127.0.0.1:{port}",
            pidfile.display(),
            web.display(),
            config.display(),
            dir.display()
        ))
        .stdout(Stdio::null())
        .stderr(fs::File::create(env.scratch.join("web-browser.log")).unwrap())
        .spawn()
        .unwrap();
    let result = (|| {
        env.wait_for("jobctl-web on TCP", Duration::from_secs(20), || {
            Ok(TcpStream::connect(("127.0.0.1", port)).is_ok())
        })?;
        let base = format!("http://127.0.0.1:{port}");
        let b = Browser::start(&env.scratch)?;
        // Without a token: the sign-in page.
        b.go(&format!("{base}/"))?;
        check(b.url()?.ends_with("/login"), || {
            "no sign-in without a token".into()
        })?;
        b.screenshot("login")?;
        b.type_into("input[name=token]", &token)?;
        b.click("button[type=submit]")?;
        // The jobs page lists every job. A click returns before the page it
        // leads to has loaded: wait for it (under load the count ran on the
        // sign-in page).
        env.wait_for(
            "the jobs page to link 12 jobs",
            Duration::from_secs(30),
            || Ok(b.count("td a[href^='/jobs/']")? == 12),
        )?;
        b.screenshot("jobs")?;
        // Filtered by team.
        b.go(&format!("{base}/?team=finance"))?;
        let finance = b.count("td a[href^='/jobs/']")?;
        check(finance > 0 && finance < 12, || {
            format!("team filter: {finance} jobs")
        })?;
        b.screenshot("jobs-filtered")?;
        // A job with runs: its page lists them; a run shows its output.
        b.go(&format!("{base}/"))?;
        b.click("a[href='/jobs/report-02']")?;
        wait_url(env, &b, "/jobs/report-02")?;
        let runs = b.count("a[href^='/jobs/report-02/runs/']")?;
        check(runs >= 20, || format!("report-02's page shows {runs} runs"))?;
        b.screenshot("job")?;
        b.click("a[href^='/jobs/report-02/runs/']")?;
        wait_url(env, &b, "/jobs/report-02/runs/")?;
        let output = b.text("pre.output")?;
        check(output.starts_with("out|run "), || {
            format!("run output: {output:?}")
        })?;
        b.screenshot("run")?;
        // The output with a script in it is text, and ran nothing.
        b.go(&format!("{base}/jobs/web-manual"))?;
        let before = b.count("a[href^='/jobs/web-manual/runs/']")?;
        b.click("a[href^='/jobs/web-manual/runs/']")?;
        wait_url(env, &b, "/jobs/web-manual/runs/")?;
        let output = b.text("pre.output")?;
        check(
            output.contains("out|hello <script>alert(1)</script>") && output.contains("err|oops"),
            || format!("the script is not shown as text: {output:?}"),
        )?;
        check(b.count("script:not([src='/page.js'])")? == 0, || {
            "a script element in the page".into()
        })?;
        b.screenshot("run-script-as-text")?;
        // Run now: a new successful run appears on the job's page.
        b.go(&format!("{base}/jobs/web-manual"))?;
        b.click("form[action$='/run'] button")?;
        // The button leads to the new run's own page (its live tail).
        env.wait_for("the new run's page", Duration::from_secs(30), || {
            Ok(b.url()?
                .starts_with(&format!("{base}/jobs/web-manual/runs/")))
        })?;
        env.wait_for("the new run on the page", Duration::from_secs(30), || {
            b.go(&format!("{base}/jobs/web-manual"))?;
            Ok(b.count("a[href^='/jobs/web-manual/runs/']")? == before + 1)
        })?;
        let first = b.text("tbody tr td:nth-child(3)")?;
        check(
            first.starts_with("success") || first.starts_with("running"),
            || format!("the new run: {first}"),
        )?;
        env.wait_for("the new run to succeed", Duration::from_secs(30), || {
            b.go(&format!("{base}/jobs/web-manual"))?;
            Ok(b.text("tbody tr td:nth-child(3)")?.starts_with("success"))
        })?;
        b.screenshot("job-after-run-now")?;
        b.go(&format!("{base}/health"))?;
        b.screenshot("health")?;
        // A phone.
        b.resize(390, 844)?;
        b.go(&format!("{base}/"))?;
        b.screenshot("jobs-phone")?;
        b.go(&format!("{base}/jobs/web-manual"))?;
        b.screenshot("job-phone")?;
        Ok(())
    })();
    let _ = env.sh(&format!(
        "kill $(cat {}) 2>/dev/null; true",
        pidfile.display()
    ));
    let _ = server.wait();
    result
}
