//! What a campaign's inputs are, as one digest: its spec and its transport's (as loaded,
//! so comments and formatting do not count) and the bytes of every file it reads:
//! templates, catalogs, audience and suppression lists.
//!
//! Files are hashed again only when their size, modification time or inode changed, so a
//! check of unchanged inputs costs a `stat` per file; a `touch` costs one hash and, the
//! bytes being the same, changes nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use crate::manifest::Campaign;

/// The digest of a campaign's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest(String);

/// Remembers each file's digest while its metadata stays the same.
#[derive(Default)]
pub struct Hasher {
    files: HashMap<PathBuf, (Stamp, [u8; 32])>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Hasher {
    /// The digest of `campaign`'s inputs.
    pub fn digest(&mut self, campaign: &Campaign) -> Digest {
        let mut hash = Sha256::new();
        hash.update(campaign.spec_digest());
        for path in files(campaign) {
            hash.update(path.as_os_str().as_encoded_bytes());
            hash.update(self.file(&path));
        }
        Digest(crate::digest::hex(&hash.finalize()))
    }

    /// A file's digest; all zeros when it cannot be read (which the reconcile reports).
    fn file(&mut self, path: &Path) -> [u8; 32] {
        use std::os::unix::fs::MetadataExt as _;
        let Ok(metadata) = std::fs::metadata(path) else {
            self.files.remove(path);
            return [0; 32];
        };
        let stamp = Stamp {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            inode: metadata.ino(),
        };
        if let Some((known, digest)) = self.files.get(path) {
            if *known == stamp {
                return *digest;
            }
        }
        let digest = hash_file(path).unwrap_or([0; 32]);
        self.files.insert(path.to_owned(), (stamp, digest));
        digest
    }
}

/// Every file the campaign reads, in a stable order.
pub fn files(campaign: &Campaign) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = [
        campaign.template.html.clone(),
        campaign.template.text.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Ok(catalogs) = crate::input::catalog_files(&campaign.locales.catalog) {
        files.extend(catalogs);
    }
    files.push(campaign.audience.file.clone());
    files.extend(
        campaign
            .audience
            .suppress
            .iter()
            .map(|list| list.file.clone()),
    );
    files
}

fn hash_file(path: &Path) -> std::io::Result<[u8; 32]> {
    use std::io::Read as _;
    let mut file = crate::input::open(path).map_err(std::io::Error::other)?;
    let mut hash = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(hash.finalize().into());
        }
        hash.update(&buffer[..read]);
    }
}
