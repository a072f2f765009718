"""Export for phones: Android asset bundles with TFLite Model Metadata, validated with LiteRT."""
