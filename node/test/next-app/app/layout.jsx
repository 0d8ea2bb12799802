import { Suspense } from 'react'

export const metadata = { title: 'tagcached proof' }

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>
        <Suspense fallback={<p>loading</p>}>{children}</Suspense>
      </body>
    </html>
  )
}
