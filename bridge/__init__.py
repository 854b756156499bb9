"""channel-bridge: a comune's news feeds, bridged into one-way broadcast channels."""

__version__ = "0.1.0"
