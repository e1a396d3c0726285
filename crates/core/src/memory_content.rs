//! In-memory `ContentStore`: the reference adapter for tests.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use s3ipfs_cid::{Block, Cid};

use crate::content::{ByteStream, ContentError, ContentStore, ContentWriter};

type Objects = Arc<Mutex<HashMap<Cid, Bytes>>>;

/// Content held in memory; lost when dropped.
#[derive(Debug, Default, Clone)]
pub struct MemoryContent {
    objects: Objects,
}

impl MemoryContent {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn poisoned() -> ContentError {
        ContentError::Io(std::io::Error::other("memory content store poisoned"))
    }
}

struct MemoryWriter {
    objects: Objects,
    buf: BytesMut,
}

#[async_trait]
impl ContentWriter for MemoryWriter {
    async fn write(&mut self, bytes: Bytes) -> Result<(), ContentError> {
        self.buf.extend_from_slice(&bytes);
        Ok(())
    }

    async fn finish(self: Box<Self>, root: Cid, _nodes: Vec<Block>) -> Result<(), ContentError> {
        let MemoryWriter { objects, buf } = *self;
        let mut objects = objects.lock().map_err(|_| MemoryContent::poisoned())?;
        objects.entry(root).or_insert_with(|| buf.freeze());
        Ok(())
    }

    async fn abort(self: Box<Self>) {}
}

#[async_trait]
impl ContentStore for MemoryContent {
    async fn writer(&self) -> Result<Box<dyn ContentWriter>, ContentError> {
        Ok(Box::new(MemoryWriter { objects: Arc::clone(&self.objects), buf: BytesMut::new() }))
    }

    async fn read(&self, cid: &Cid, range: Range<u64>) -> Result<ByteStream, ContentError> {
        let objects = self.objects.lock().map_err(|_| Self::poisoned())?;
        let data = objects.get(cid).ok_or(ContentError::NotFound(*cid))?;
        let size = data.len() as u64;
        if range.start > range.end || range.end > size {
            return Err(ContentError::Range { start: range.start, end: range.end, size });
        }
        let slice = data.slice(range.start as usize..range.end as usize);
        Ok(Box::pin(futures::stream::iter([Ok(slice)])))
    }

    async fn size(&self, cid: &Cid) -> Result<Option<u64>, ContentError> {
        Ok(self.objects.lock().map_err(|_| Self::poisoned())?.get(cid).map(|d| d.len() as u64))
    }

    async fn delete(&self, cid: &Cid) -> Result<(), ContentError> {
        self.objects.lock().map_err(|_| Self::poisoned())?.remove(cid);
        Ok(())
    }
}
