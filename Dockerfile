# The chapter 12 digit service (image + voice -> digit), CPU only, on ONNX Runtime.
# UNTESTED: Docker cannot run on the machine this course is built on. To test it:
#   1. run notebooks/12_deployment.ipynb (it writes .cache/deploy/av_service.onnx), then
#   2. docker build -t mmcourse-serve .
#   3. docker run --rm -p 127.0.0.1:8000:8000 mmcourse-serve     (published on the host's loopback only)
#   4. curl http://127.0.0.1:8000/health, and run the chapter's load test against http://127.0.0.1:8000
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY mmcourse ./mmcourse
# CPU wheels of torch (the package imports it); the pins come from constraints.txt.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
        -c constraints.txt ".[deploy]"
COPY .cache/deploy/av_service.onnx /app/model/av_service.onnx

ENV MMCOURSE_MODEL=/app/model/av_service.onnx OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
USER nobody
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"
# Inside the container the service must listen on the container's interface (0.0.0.0);
# `docker run -p 127.0.0.1:8000:8000` keeps it private to the host.
CMD ["python", "-m", "mmcourse.deploy.serve", "--host", "0.0.0.0", "--port", "8000"]
