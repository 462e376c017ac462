"""Framework-free training pieces (prompt simulation, losses); the trainers live in the adapters."""
