"""The pipeline split over NATS JetStream: workers publish observations, one memory service applies them."""
