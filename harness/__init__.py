"""What the tests and the benchmarks share, and neither owns: a JACK server of their own
(``jackd``), and Magenta-style ``.mag`` bundles built with TensorFlow with the runner of their
own metagraph (``synthetic_bundles``, ``metagraph``). Tests may import the benchmarks (to
smoke-test them); the benchmarks never import the tests."""
