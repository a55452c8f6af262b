"""Container runtime: protocol, Docker implementation, label codec."""
