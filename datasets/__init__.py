"""The data sources (``--dataset``): one module a data set (cifar10, image_folder, gtsrb, mnist,
fashion_mnist), each keeping the contract written in base.py (``Source``), and what they share
(base: the contract, constants, errors, option checks; pipeline: tf.data batching, augmentation
and preprocessing; image_files: listing, checking and decoding image files; idx: the IDX files
of MNIST and Fashion-MNIST). input_data.py at the root holds the table of sources the programs
read."""
