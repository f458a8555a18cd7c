"""Live views: queue activity, interaction details and the panel, pushed on commit."""
