"""The data sources (``--dataset``): one module a data set (cifar10, image_folder, gtsrb, mnist),
what they share (base: constants, errors, option checks; pipeline: tf.data batching,
augmentation and preprocessing; image_files: listing, checking and decoding image files).
input_data.py at the root holds the table of sources the programs read."""
