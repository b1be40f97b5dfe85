"""A robot's own noise: measured once at installation, kept online, whitened out, never a talker.

- :mod:`.files`: the versioned files tied to an array profile (a noise model, a noise state),
  written atomically and refused with one line when they do not match;
- :mod:`.learn`: ``arraydaemon noise learn``: a noise model from a recording of the noise alone,
  and the check that nobody talked in it;
- :mod:`.whiten`: the noise's spatial covariance whitened out of every bin (GEVD), for the
  evidence tests and the localizers' cross-spectra;
- :mod:`.gate`: the stage that keeps the noise's own direction out of ``doa`` sources and
  tracker detections, and reports where the noise is.

User documentation: ``docs/robot-noise.md``.
"""
