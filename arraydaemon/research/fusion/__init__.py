"""The fusion benchmark (``arraydaemon eval --fusion``): rooms with several arrays, their recordings
replayed by one ``arraydaemon replay`` process per array into a real ``arraydaemon fuse`` process."""
