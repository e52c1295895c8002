"""The reference: a bundle run through its own metagraph with tf.compat.v1, as Magenta does."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import tensorflow as tf

from live.models.mag import read_bundle


class MetagraphRunner:
    """Opens a .mag bundle's metagraph in a TF1 session and runs it on one stream.

    The metagraph's batch size is baked in; every row is fed the same input and row 0 is read.
    """

    def __init__(self, path: str) -> None:
        bundle = read_bundle(path)
        self._tmp = tempfile.TemporaryDirectory()
        ckpt = os.path.join(self._tmp.name, "model.ckpt")
        with open(ckpt, "wb") as f:
            f.write(bundle.checkpoint)
        with open(ckpt + ".meta", "wb") as f:
            f.write(bundle.metagraph)
        self.graph = tf.Graph()
        with self.graph.as_default():
            saver = tf.compat.v1.train.import_meta_graph(ckpt + ".meta", clear_devices=True)
            self.session = tf.compat.v1.Session(graph=self.graph)
            saver.restore(self.session, ckpt)
        get = self.graph.get_collection
        self.inputs = get("inputs")[0]
        self.softmax = get("softmax")[0]
        self.temperature = get("temperature")[0]
        self.initial_state = get("initial_state")
        self.final_state = get("final_state")
        self.batch_size = int(self.inputs.shape[0])

    def zero_state(self) -> list[np.ndarray]:
        return self.session.run(self.initial_state)

    def run(self, inputs: np.ndarray, state: list[np.ndarray] | None = None, temperature: float = 1.0):
        """inputs [T, I] for one stream -> (softmax [T, C] of row 0, final state)."""
        batch = np.repeat(inputs[None].astype(np.float32), self.batch_size, axis=0)
        feed = {self.inputs: batch, self.temperature: temperature}
        if state is not None:
            feed.update(dict(zip(self.initial_state, state)))
        probs, final = self.session.run([self.softmax, self.final_state], feed)
        return probs[0], final

    def close(self) -> None:
        self.session.close()
        self._tmp.cleanup()
