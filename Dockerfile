# Pharos: build and run the archive (SQLite + ./storage by default).
FROM python:3.11-slim
WORKDIR /opt/pharos
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
RUN pip install --no-cache-dir -e '.[s3]'  # the S3 blob store too (PHAROS_BLOBSTORE_URL=s3://...)
VOLUME ["/var/lib/pharos"]
ENV PHAROS_STORAGE_DIRECTORY=/var/lib/pharos \
    PHAROS_REMOTE_ACCESS_ALLOWED=true
EXPOSE 8042 4242
# RemoteAccessAllowed must be true inside a container, which turns authentication on
# (as Orthanc does): mount an Orthanc-style configuration file with RegisteredUsers at
# /etc/pharos/pharos.json; it is read when present. The OHIF viewer is not in the image
# (`make ohif` needs npm); mount a built one and set PHAROS_VIEWER_DIRECTORY to serve it.
CMD ["sh", "-c", "if [ -f /etc/pharos/pharos.json ]; then exec pharos serve --host 0.0.0.0 --config /etc/pharos/pharos.json; else exec pharos serve --host 0.0.0.0; fi"]
