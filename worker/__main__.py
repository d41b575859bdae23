import asyncio

from worker.main import main

asyncio.run(main())
