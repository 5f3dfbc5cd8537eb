//! Reading a model file without trusting it: opened without blocking (a
//! FIFO at the path cannot hang the reader), accepted only as a regular
//! file, its header and declared size checked before the payload is read,
//! and the payload read with a cap (a file that grows, or a path that
//! leads to an endless device, cannot make the read go on).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::{ModelError, HEADER_LEN, MAGIC, MAX_MODEL_BYTES};

/// The file's bytes (header and payload), once the header agrees with the
/// file's size. The content checks are [`super::ModelData::from_bytes`]'s.
pub(super) fn read_model_file(path: &Path) -> Result<Vec<u8>, ModelError> {
    let p = || path.to_path_buf();
    let io = |source| ModelError::Io { path: p(), source };
    let mut file = open_nonblocking(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(ModelError::NotAFile {
            path: p(),
            kind: file_kind(&meta),
        });
    }
    let len = meta.len();
    if len > MAX_MODEL_BYTES {
        return Err(ModelError::TooLarge {
            path: p(),
            len,
            max: MAX_MODEL_BYTES,
        });
    }
    let mut header = Vec::with_capacity(HEADER_LEN);
    (&mut file)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut header)
        .map_err(io)?;
    if header.len() < HEADER_LEN {
        // from_bytes names what is wrong with a short file.
        return Ok(header);
    }
    if header[..MAGIC.len()] != MAGIC {
        return Err(ModelError::BadMagic { path: p() });
    }
    let mut word = [0u8; 8];
    word.copy_from_slice(&header[16..24]);
    let declared = u64::from_le_bytes(word);
    let actual = len - HEADER_LEN as u64;
    if declared != actual {
        return Err(ModelError::LengthMismatch {
            path: p(),
            declared,
            actual,
        });
    }
    let capacity = usize::try_from(len).map_err(|_| ModelError::TooLarge {
        path: p(),
        len,
        max: MAX_MODEL_BYTES,
    })?;
    let mut bytes = Vec::with_capacity(capacity);
    bytes.extend_from_slice(&header);
    // One byte more than declared, to tell a file that grew while read.
    (&mut file)
        .take(declared + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(bytes)
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

/// What a path that is not a regular file is, for the error.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_model_file(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                ModelError::NotAFile {
                    kind: "a directory",
                    ..
                }
            ),
            "{err}"
        );
        #[cfg(unix)]
        {
            let err = read_model_file(Path::new("/dev/zero")).unwrap_err();
            assert!(
                matches!(
                    err,
                    ModelError::NotAFile {
                        kind: "a character device",
                        ..
                    }
                ),
                "{err}"
            );
            let fifo = dir.path().join("fifo");
            let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            // Returns at once (no writer needed): refused, not blocked.
            let err = read_model_file(&fifo).unwrap_err();
            assert!(
                matches!(err, ModelError::NotAFile { kind: "a FIFO", .. }),
                "{err}"
            );
            // A symlink to a device is followed and refused the same way.
            let link = dir.path().join("zero.slant");
            std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
            assert!(matches!(
                read_model_file(&link).unwrap_err(),
                ModelError::NotAFile { .. }
            ));
        }
    }

    #[test]
    fn checks_the_declared_length_before_reading_the_payload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.slant");
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[0u8; 8]);
        bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
        bytes.extend_from_slice(&[0u8; 32]);
        bytes.extend_from_slice(b"payload");
        std::fs::write(&path, &bytes).unwrap();
        let err = read_model_file(&path).unwrap_err();
        assert!(
            matches!(err, ModelError::LengthMismatch { declared, actual: 7, .. } if declared == 1 << 40),
            "{err}"
        );
        // Not a model at all: refused on its magic, not read whole.
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        assert!(matches!(
            read_model_file(&path).unwrap_err(),
            ModelError::BadMagic { .. }
        ));
        // Short files are left to from_bytes, which names them.
        std::fs::write(&path, b"SLANT").unwrap();
        assert_eq!(read_model_file(&path).unwrap(), b"SLANT");
    }
}
