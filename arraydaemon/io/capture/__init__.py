"""Live capture through PortAudio in a child process."""
