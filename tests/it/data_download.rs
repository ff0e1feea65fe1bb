//! `gps data download` against a loopback HTTP/1.1 server (a TcpListener in a thread) that
//! serves a small tar.gz built here, answers `Range` requests with 206, and can cut a response
//! halfway or ignore `Range` (answer 200) on demand.

use gps_ssl::data::download::{self, Checksum, Packaging, Release};
use md5::{Digest, Md5};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

fn small_archive() -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    // Incompressible bytes, so that the archive is large enough to be cut in the middle.
    let noise: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for (name, body) in [("cifar-10-batches-bin/batches.meta.txt", &b"airplane\nautomobile\n"[..]), ("cifar-10-batches-bin/noise.bin", &noise)] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, body).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// How the server answers.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    /// 200 with the whole body, or 206 with the rest for `Range: bytes=N-`.
    Normal,
    /// The next response announces the whole length, sends this many bytes and closes; then Normal.
    CutAfter(usize),
    /// Always 200 with the whole body, whatever the request asks.
    IgnoreRange,
}

struct Server {
    url: String,
    /// Each request: its request line and its `Range` header, if any.
    requests: Arc<Mutex<Vec<(String, Option<String>)>>>,
    mode: Arc<Mutex<Mode>>,
}

impl Server {
    fn start(body: Vec<u8>, path: &str) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}{path}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let mode = Arc::new(Mutex::new(Mode::Normal));
        let (log, m) = (requests.clone(), mode.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                let _ = reader.read_line(&mut request_line);
                let mut range = None;
                let mut line = String::new();
                while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) && line != "\r\n" {
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case("range")
                    {
                        range = Some(v.trim().to_string());
                    }
                    line.clear();
                }
                log.lock().unwrap().push((request_line.trim().to_string(), range.clone()));
                let mode = std::mem::replace(&mut *m.lock().unwrap(), Mode::Normal);
                let start = match (mode, &range) {
                    (Mode::Normal, Some(r)) => r.strip_prefix("bytes=").and_then(|r| r.strip_suffix('-')).and_then(|n| n.parse::<usize>().ok()),
                    _ => None,
                };
                if mode == Mode::IgnoreRange {
                    *m.lock().unwrap() = Mode::IgnoreRange;
                }
                let _ = match start {
                    Some(s) if s >= body.len() => stream.write_all(
                        format!(
                            "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    ),
                    Some(s) => {
                        let head = format!(
                            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {s}-{}/{}\r\nConnection: close\r\n\r\n",
                            body.len() - s,
                            body.len() - 1,
                            body.len()
                        );
                        stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(&body[s..]))
                    }
                    None => {
                        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n", body.len());
                        let n = if let Mode::CutAfter(n) = mode { n } else { body.len() };
                        stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(&body[..n]))
                    }
                };
                let _ = stream.flush();
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        });
        Server { url, requests, mode }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn requests(&self) -> Vec<(String, Option<String>)> {
        self.requests.lock().unwrap().clone()
    }
}

fn test_release(url: &str, checksum: Checksum, bytes: Option<u64>) -> Release {
    Release {
        name: "test".into(),
        url: url.to_string(),
        file: "cifar-10-binary.tar.gz".into(),
        checksum,
        bytes,
        packaging: Packaging::TarGz { folder: "cifar-10-batches-bin" },
        check: None,
        format: "cifar10-bin",
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn fresh_download_is_verified_extracted_and_a_second_call_is_a_no_op() {
    let archive = small_archive();
    let server = Server::start(archive.clone(), "/cifar-10-binary.tar.gz");
    let dir = tempfile::tempdir().unwrap();
    let release = test_release(&server.url, Checksum::md5(&md5_hex(&archive).to_uppercase()).unwrap(), Some(archive.len() as u64));
    let got = download::fetch(&release, dir.path()).unwrap();
    assert!(got.downloaded && got.extracted && got.resumed_from == 0);
    assert_eq!(std::fs::read(&got.file).unwrap(), archive);
    assert_eq!(got.md5, md5_hex(&archive));
    assert_eq!(std::fs::read_to_string(dir.path().join("cifar-10-batches-bin/batches.meta.txt")).unwrap(), "airplane\nautomobile\n");
    assert_eq!(names(dir.path()), ["cifar-10-batches-bin", "cifar-10-binary.tar.gz", "cifar-10-binary.tar.gz.download.json"], "no .part or staging left");
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("cifar-10-binary.tar.gz.download.json")).unwrap()).unwrap();
    assert_eq!(record["bytes"], archive.len() as u64);
    assert_eq!(record["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(server.requests().len(), 1);
    assert_eq!(server.requests()[0].1, None, "a fresh download asks for the whole file");

    // Again: nothing is fetched, nothing re-extracted (a file added to the tree stays).
    std::fs::write(dir.path().join("cifar-10-batches-bin/mine.txt"), "kept").unwrap();
    let again = download::fetch(&release, dir.path()).unwrap();
    assert!(!again.downloaded && !again.extracted);
    assert_eq!(server.requests().len(), 1, "the verified archive on disk is reused");
    assert!(dir.path().join("cifar-10-batches-bin/mine.txt").is_file());

    // A damaged tree (its folder gone) is extracted again from the verified archive, no download.
    std::fs::remove_dir_all(dir.path().join("cifar-10-batches-bin")).unwrap();
    let repaired = download::fetch(&release, dir.path()).unwrap();
    assert!(!repaired.downloaded && repaired.extracted);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_cut_download_resumes_with_a_range_request() {
    let archive = small_archive();
    let half = archive.len() / 2;
    let server = Server::start(archive.clone(), "/cifar-10-binary.tar.gz");
    let dir = tempfile::tempdir().unwrap();
    let release = test_release(&server.url, Checksum::md5(&md5_hex(&archive)).unwrap(), Some(archive.len() as u64));
    server.set(Mode::CutAfter(half));
    let err = format!("{:#}", download::fetch(&release, dir.path()).unwrap_err());
    assert!(err.contains("interrupted") && err.contains("resume") && err.contains(&format!("of {}", archive.len())), "{err}");
    let part = dir.path().join("cifar-10-binary.tar.gz.part");
    let kept = std::fs::metadata(&part).unwrap().len() as usize;
    assert!(kept > 0 && kept <= half, "the bytes received are kept in the .part file ({kept})");
    assert!(!dir.path().join("cifar-10-binary.tar.gz").exists());

    let got = download::fetch(&release, dir.path()).unwrap();
    assert!(got.downloaded && got.resumed_from == kept as u64);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].1.as_deref(), Some(format!("bytes={kept}-").as_str()), "the rerun asks for the rest only");
    assert_eq!(std::fs::read(&got.file).unwrap(), archive);
    assert!(!part.exists());
    assert!(dir.path().join("cifar-10-batches-bin/noise.bin").is_file());
}

#[test]
fn a_server_answering_200_to_a_range_request_restarts_cleanly() {
    let archive = small_archive();
    let server = Server::start(archive.clone(), "/cifar-10-binary.tar.gz");
    let dir = tempfile::tempdir().unwrap();
    let release = test_release(&server.url, Checksum::md5(&md5_hex(&archive)).unwrap(), None);
    server.set(Mode::CutAfter(1000));
    assert!(download::fetch(&release, dir.path()).is_err());
    server.set(Mode::IgnoreRange);
    let got = download::fetch(&release, dir.path()).unwrap();
    assert_eq!(got.resumed_from, 0, "the whole file came again: the part was truncated, not appended to");
    assert!(server.requests()[1].1.is_some());
    assert_eq!(std::fs::read(&got.file).unwrap(), archive);
}

#[test]
fn a_checksum_mismatch_deletes_the_file_and_names_the_expected_value() {
    let archive = small_archive();
    let server = Server::start(archive.clone(), "/cifar-10-binary.tar.gz");
    let dir = tempfile::tempdir().unwrap();
    let wrong = "0".repeat(64);
    let release = test_release(&server.url, Checksum::sha256(&wrong).unwrap(), None);
    let err = format!("{:#}", download::fetch(&release, dir.path()).unwrap_err());
    assert!(err.contains("SHA-256") && err.contains(&format!("expected {wrong}")) && err.contains("deleted"), "{err}");
    assert!(names(dir.path()).is_empty(), "nothing may be left behind: {:?}", names(dir.path()));

    // A wrong file already there under the archive's name is replaced by a download.
    std::fs::write(dir.path().join("cifar-10-binary.tar.gz"), b"not the archive").unwrap();
    let release = test_release(&server.url, Checksum::md5(&md5_hex(&archive)).unwrap(), None);
    let got = download::fetch(&release, dir.path()).unwrap();
    assert!(got.downloaded);
    assert_eq!(std::fs::read(&got.file).unwrap(), archive);

    // A server offering another size than the release's is refused before any byte is kept.
    let dir = tempfile::tempdir().unwrap();
    let release = test_release(&server.url, Checksum::md5(&md5_hex(&archive)).unwrap(), Some(archive.len() as u64 + 1));
    let err = format!("{:#}", download::fetch(&release, dir.path()).unwrap_err());
    assert!(err.contains("offers") && err.contains(&(archive.len() + 1).to_string()), "{err}");
    assert!(!dir.path().join("cifar-10-binary.tar.gz").exists());
}

#[test]
fn releases_are_the_official_ones() {
    let err = download::release("svhn").unwrap_err().to_string();
    assert!(err.contains("cifar10") && err.contains("aircraft") && err.contains("tissuemnist"), "{err}");
    let r = download::release("cifar100").unwrap();
    assert_eq!((r.checksum.hex.as_str(), r.bytes), ("03b5dce01913d631647c71ecec9e9cb8", Some(168_513_733)));
    let r = download::release("aircraft").unwrap();
    assert_eq!(r.url, "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz");
    assert_eq!(r.checksum.to_string(), "SHA-256 e4e323d410e29f0370c81eabdcbb0e2b813acea1de22891b70b58ff41bfc9834");
    let r = download::release("pathmnist").unwrap();
    assert_eq!((r.file.as_str(), r.checksum.hex.as_str()), ("pathmnist.npz", "a8b06965200029087d5bd730944a56c1"));
    let r = download::release("tissuemnist").unwrap();
    assert_eq!((r.file.as_str(), r.checksum.hex.as_str()), ("tissuemnist.npz", "ebe78ee8b05294063de985d821c1c34b"));
}
