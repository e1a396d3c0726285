//! kubo's balanced layout, built bottom-up as leaves arrive.
//!
//! Every leaf sits at the same depth. Each level groups consecutive children into nodes of at most `max_links`; a
//! full group becomes a node at once, so memory holds one partial group per level. At the end the partial groups are
//! closed bottom-up, keeping one-child interior nodes (kubo does not collapse them); only a file of a single leaf is
//! that leaf itself.

use crate::block::{Block, BlockKind, DagLink};
use crate::profile::Profile;

/// Builds the interior nodes above a sequence of leaves.
#[derive(Debug)]
pub(crate) struct TreeBuilder {
    profile: Profile,
    /// `levels[0]` holds leaves waiting for a parent, `levels[1]` their parents, and so on.
    levels: Vec<Vec<DagLink>>,
}

impl TreeBuilder {
    pub(crate) fn new(profile: Profile) -> Self {
        TreeBuilder { profile, levels: vec![Vec::new()] }
    }

    /// Whether no leaf has been pushed yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.levels.len() == 1 && self.levels[0].is_empty()
    }

    /// Adds the next leaf; nodes completed by it are appended to `out`.
    pub(crate) fn push_leaf(&mut self, leaf: DagLink, out: &mut Vec<Block>) {
        self.levels[0].push(leaf);
        let mut level = 0;
        while self.levels[level].len() == self.profile.max_links() {
            let link = self.close(level, out);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::with_capacity(self.profile.max_links()));
            }
            self.levels[level + 1].push(link);
            level += 1;
        }
    }

    /// Closes every partial group and returns the root. With no leaves at all, the root is the empty leaf, which is
    /// appended to `out` like any other leaf.
    pub(crate) fn finish(mut self, out: &mut Vec<Block>) -> DagLink {
        if self.is_empty() {
            let (data, link) = self.profile.leaf(bytes::Bytes::new());
            out.push(Block { cid: link.cid, data, kind: BlockKind::Leaf { offset: 0, len: 0 } });
            return link;
        }
        let mut level = 0;
        loop {
            let top = level + 1 == self.levels.len();
            match self.levels[level].len() {
                0 => {}
                1 if top => return self.levels[level][0],
                _ => {
                    let link = self.close(level, out);
                    if top {
                        self.levels.push(Vec::with_capacity(1));
                    }
                    self.levels[level + 1].push(link);
                }
            }
            level += 1;
        }
    }

    fn close(&mut self, level: usize, out: &mut Vec<Block>) -> DagLink {
        let (data, link) = self.profile.node(&self.levels[level]);
        self.levels[level].clear();
        out.push(Block { cid: link.cid, data, kind: BlockKind::Node });
        link
    }
}
