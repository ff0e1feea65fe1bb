//! `gps data info` and `gps data download` from the command line.

use std::process::Command;

fn gps(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gps")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn info_describes_both_splits_of_the_mnist_csv() {
    let csv = crate::support::mnist5k();
    assert!(csv.is_file(), "{} is missing: run scripts/fetch-mnist5k.sh", csv.display());
    let cache = tempfile::tempdir().unwrap();
    let (ok, out) = gps(&["data", "info", csv.to_str().unwrap(), "--cache-dir", cache.path().to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("(mnist-csv)"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("train: 4000 images of 1x28x28")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("test: 1000 images of 1x28x28")), "{out}");
    assert_eq!(out.lines().filter(|l| l.split_whitespace().collect::<Vec<_>>() == ["7", "400"]).count(), 1, "{out}");
}

#[test]
fn bad_format_and_unknown_release_are_named() {
    let (ok, out) = gps(&["data", "info", "x.zip", "--format", "imagefolder"]);
    assert!(!ok && out.contains("image-folder"), "the allowed formats are listed: {out}");
    let (ok, out) = gps(&["data", "download", "svhn", "--dir", "/nonexistent"]);
    assert!(!ok && out.contains("cifar100") && out.contains("aircraft") && out.contains("pathmnist"), "{out}");
}

/// Serves `body` over HTTP/1.1 on 127.0.0.1 and records each request line.
fn serve(body: Vec<u8>) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/mirror", listener.local_addr().unwrap());
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) && line != "\r\n" {
                line.clear();
            }
            seen.lock().unwrap().push(first.trim().to_string());
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(&body));
        }
    });
    (base, log)
}

fn gps_env(args: &[&str], env: (&str, &str)) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gps")).args(args).env(env.0, env.1).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn download_from_a_mirror_base_url_checks_the_official_md5() {
    use tch::{Kind, Tensor};
    let work = tempfile::tempdir().unwrap();
    let npz = work.path().join("served.npz");
    let images = Tensor::arange(6 * 28 * 28 * 3, (Kind::Int64, tch::Device::Cpu)).remainder(256).to_kind(Kind::Uint8).view([6, 28, 28, 3]);
    let labels = Tensor::from_slice(&[0u8, 1, 2, 3, 4, 8]).view([6, 1]);
    let (a, b) = (images.narrow(0, 0, 4), labels.narrow(0, 0, 4));
    let (c, d) = (images.narrow(0, 4, 2), labels.narrow(0, 4, 2));
    Tensor::write_npz(&[("train_images", &a), ("train_labels", &b), ("val_images", &c), ("val_labels", &d), ("test_images", &a), ("test_labels", &b)], &npz)
        .unwrap();
    let body = std::fs::read(&npz).unwrap();
    let md5: String = md5::Digest::finalize(<md5::Md5 as md5::Digest>::new_with_prefix(&body)).iter().map(|b| format!("{b:02x}")).collect();
    let (base, log) = serve(body);
    let dir = work.path().join("data");
    let d = dir.to_str().unwrap();
    let env = ("GPS_DOWNLOAD_BASE_URL", base.as_str());

    // The mirror's file is not the official one: refused, deleted, the expected MD5 named.
    let (ok, out) = gps_env(&["data", "download", "pathmnist", "--dir", d], env);
    assert!(!ok && out.contains("expected a8b06965200029087d5bd730944a56c1"), "{out}");
    assert_eq!(log.lock().unwrap()[0], "GET /mirror/pathmnist.npz?download=1 HTTP/1.1", "the base URL replaces the prefix before the file name");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing kept");

    // With the mirror's own MD5 it is kept, checked (the six arrays) and named for the spec.
    let (ok, out) = gps_env(&["data", "download", "pathmnist", "--dir", d, "--md5", &md5], env);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("dataset: {{format: medmnist-npz, path: {d}/pathmnist.npz}}")), "{out}");
    let (ok, out) = gps_env(&["data", "download", "pathmnist", "--dir", d, "--md5", &md5], env);
    assert!(ok && out.contains("already there"), "{out}");
    assert_eq!(log.lock().unwrap().len(), 2, "the second run downloads nothing");

    let cache = work.path().join("cache");
    let file = dir.join("pathmnist.npz");
    let (ok, out) = gps(&["data", "info", file.to_str().unwrap(), "--cache-dir", cache.to_str().unwrap(), "--test-split", "val"]);
    assert!(ok, "{out}");
    assert!(out.lines().any(|l| l.starts_with("test: 2 images of 3x28x28") && l.contains("`val` split")), "{out}");
    assert!(out.contains("colorectal adenocarcinoma epithelium"), "MedMNIST's label names: {out}");
}
