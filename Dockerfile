FROM python:3.11-slim
WORKDIR /app
# The data folder is the volume (docker-compose.yml mounts vislink-data here): everything vislink writes,
# weights included, goes there. Set before the weights are installed, so that they land inside it (a new
# named volume starts as a copy of the image's /data).
ENV VISLINK_HOME=/data
COPY pyproject.toml README.md alembic.ini ./
COPY vislink ./vislink
COPY migrations ./migrations
# A plain (non-editable) install: the wheel carries migrations/ as data files (see pyproject.toml).
RUN pip install --no-cache-dir . && rm -rf /app/build
# No `|| true`: an image without its encoder weights must fail to build, not fail at the first ingest.
RUN vislink weights install vgg16-caffe-conv
EXPOSE 8501
CMD ["vislink", "doctor"]
