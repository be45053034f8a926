# Pharos: build and run the archive (SQLite + ./storage by default).
FROM python:3.11-slim
WORKDIR /opt/pharos
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN pip install --no-cache-dir -e .
VOLUME ["/var/lib/pharos"]
ENV PHAROS_STORAGE_DIRECTORY=/var/lib/pharos \
    PHAROS_REMOTE_ACCESS_ALLOWED=true
EXPOSE 8042 4242
# RemoteAccessAllowed must be true inside a container; give users in a configuration
# file (mounted at /etc/pharos/pharos.json) to keep authentication on.
CMD ["pharos", "serve", "--host", "0.0.0.0"]
