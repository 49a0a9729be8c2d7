FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY lanes ./lanes
COPY router ./router
COPY broker ./broker
COPY workers ./workers
COPY ops ./ops
RUN pip install --no-cache-dir -e .
USER nobody
CMD ["lanes", "--help"]
