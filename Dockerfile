FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY kernel ./kernel
COPY lanes ./lanes
COPY sim ./sim
COPY bench ./bench
COPY router ./router
COPY broker ./broker
COPY workers ./workers
COPY ops ./ops
RUN pip install --no-cache-dir -e .
USER nobody
CMD ["lanes", "--help"]
