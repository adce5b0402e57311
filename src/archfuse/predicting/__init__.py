"""archfuse-predict: label image files with a checkpoint or an exported file, reading each image as the
network's training data were read (channels, size and normalisation from the data spec)."""
