FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY vislink ./vislink
COPY migrations ./migrations
RUN pip install --no-cache-dir -e . && vislink weights install vgg16-caffe-conv || true
ENV VISLINK_HOME=/data
EXPOSE 8501
CMD ["vislink", "doctor"]
