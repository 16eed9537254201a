"""Faults and recovery: deleting pods and waiting for the RayService to heal."""
