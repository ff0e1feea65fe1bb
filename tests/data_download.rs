//! `gps data download` against a loopback HTTP server serving a small tar.gz built here.

use md5::{Digest, Md5};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn small_archive() -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (name, body) in [("cifar-10-batches-bin/batches.meta.txt", &b"airplane\nautomobile\n"[..]), ("cifar-10-batches-bin/readme.html", b"<p>hi</p>")] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, body).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// Serves `body` to every GET on 127.0.0.1 and counts the requests.
fn serve(body: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/cifar-10-binary.tar.gz", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) && line != "\r\n" {
                line.clear();
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/gzip\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(&body));
        }
    });
    (url, hits)
}

#[test]
fn wrong_md5_is_refused_and_leaves_nothing() {
    let (url, _) = serve(small_archive());
    let dir = tempfile::tempdir().unwrap();
    let err = format!("{:#}", gps_ssl::data::download::download_and_extract(&url, "00000000000000000000000000000000", dir.path()).unwrap_err());
    assert!(err.contains("MD5") && err.contains("expected 00000000000000000000000000000000"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "nothing may be left behind: {left:?}");
}

#[test]
fn right_md5_extracts_and_a_verified_copy_is_not_downloaded_again() {
    let archive = small_archive();
    let md5: String = Md5::digest(&archive).iter().map(|b| format!("{b:02x}")).collect();
    let (url, hits) = serve(archive.clone());
    let dir = tempfile::tempdir().unwrap();
    let path = gps_ssl::data::download::download_and_extract(&url, &md5.to_uppercase(), dir.path()).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), archive);
    let meta = dir.path().join("cifar-10-batches-bin/batches.meta.txt");
    assert_eq!(std::fs::read_to_string(&meta).unwrap(), "airplane\nautomobile\n");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    gps_ssl::data::download::download_and_extract(&url, &md5, dir.path()).unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the verified archive on disk is reused");
    let names: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "no staging files left: {names:?}");
}

#[test]
fn unknown_release_lists_the_known_ones() {
    let err = gps_ssl::data::download::release("svhn").unwrap_err().to_string();
    assert!(err.contains("cifar10") && err.contains("cifar100"), "{err}");
}
